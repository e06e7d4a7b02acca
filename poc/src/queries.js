// The GraphQL documents the wall uses.

const CASE_FIELDS = `
  ticket title status statusLabel overdue createdAt dueAt
  location { lat lon }
  kelurahan { code name }
  kecamatan { code name }
  dinas { code shortName }
  category { code name }
`;

export const REFERENCE = `
query PocReference {
  kelurahanList { code name kecamatan { code name } geometry(simplifyM: 20) }
  kecamatanList { code name }
  dinasList { code shortName name }
  categories { code name serviceLevelDays }
}`;

export const OPEN_CASES = `
query PocOpenCases($filter: CaseFilterInput, $after: String) {
  cases(filter: $filter, first: 100, after: $after) {
    edges { node { ${CASE_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const TABLES = `
query PocTables($filter: CaseFilterInput, $from: DateTime!, $to: DateTime!, $first: Int!) {
  caseBacklog(groupBy: DINAS, filter: $filter) { key label open overdue }
  caseStats(groupBy: DINAS, filter: $filter, from: $from, to: $to) {
    groups { key onTimeShare }
  }
  overdueCases(filter: $filter, first: $first) { ${CASE_FIELDS} }
}`;

export const EVENTS_CURSOR = `query PocEventsCursor { caseEventsCursor }`;

export const CASE_EVENTS = `
subscription PocCaseEvents($filter: CaseEventFilterInput, $after: String) {
  caseEvents(filter: $filter, after: $after) {
    cursor
    event { type at }
    case { ${CASE_FIELDS} }
  }
}`;

export const OPEN_COUNTS = `
subscription PocOpenCounts($filter: CaseFilterInput) {
  openCaseCounts(groupBy: STATUS, filter: $filter) { total groups { key label count } }
}`;
