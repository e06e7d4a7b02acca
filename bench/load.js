#!/usr/bin/env node
// One load run with autocannon's programmatic API, driven by bench/run.py.
//
//   node bench/load.js SPEC.json
//
// SPEC is a JSON object:
//   url          the GraphQL endpoint
//   connections  concurrent connections (each keeps one request in flight)
//   duration     seconds
//   template     the request body, with __LAT__, __LON__ and __KEY__ placeholders
//   points       [[lat, lon], ...]: request n uses point n modulo their number
//   keyPrefix    request n sends idempotency key keyPrefix + n, so every key of
//                every run is new (autocannon's static -b/-H bodies cannot do that)
//   expect       a substring every good response body holds; others are mismatches
//   headers      extra request headers (e.g. a partner's x-api-key)
//
// Prints autocannon's result, with `mismatches` and a few samples of bad bodies,
// as one JSON object on stdout.

'use strict'

const fs = require('node:fs')
const autocannon = require('autocannon')

const PLACEHOLDER = /__(LAT|LON|KEY)__/g
const MAX_BAD_SAMPLES = 3

function compile (template) {
  // Split once; each request only joins strings.
  const parts = []
  let last = 0
  for (const match of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, match.index), match[1])
    last = match.index + match[0].length
  }
  parts.push(template.slice(last))
  return parts
}

function render (parts, values) {
  let out = parts[0]
  for (let i = 1; i < parts.length; i += 2) {
    out += values[parts[i]] + parts[i + 1]
  }
  return out
}

function main () {
  const specPath = process.argv[2]
  if (!specPath) {
    process.stderr.write('usage: node bench/load.js SPEC.json\n')
    process.exit(2)
  }
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  const parts = compile(spec.template)
  const points = spec.points
  if (!Array.isArray(points) || points.length === 0) {
    throw new Error('spec.points must be a non-empty list of [lat, lon]')
  }
  let sent = 0
  const badSamples = []

  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.duration,
    timeout: spec.timeout || 30,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(spec.headers || {})
    },
    requests: [
      {
        setupRequest (request) {
          const n = sent++
          const [lat, lon] = points[n % points.length]
          request.body = render(parts, { LAT: lat, LON: lon, KEY: spec.keyPrefix + n })
          return request
        }
      }
    ],
    verifyBody (body) {
      if (body.includes(spec.expect)) return true
      if (badSamples.length < MAX_BAD_SAMPLES) badSamples.push(body.slice(0, 500))
      return false
    }
  })

  instance.on('done', (result) => {
    result.sent = sent
    result.badSamples = badSamples
    process.stdout.write(JSON.stringify(result) + '\n')
  })
}

main()
