"""The case lifecycle: one transition table, and every change made to a case after intake.

Each change locks the case row (SELECT … FOR UPDATE) before it looks at the status,
so of two concurrent changes the second sees what the first did. It then updates
`updated_at` and appends its event in the same transaction. Input is checked
before anything changes: a refusal leaves the session as it was. Functions flush,
never commit.
"""
