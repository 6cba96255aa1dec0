"""Generated cases: what the contract allows and forbids, field by field, drawn by schemathesis.

`conformance run --generated N` adds N cases built from the contracts to the run, as ordinary
cases (`Case.generated` set, feature `generated.<field>.<rule>`) that the runner, the judge and
every report treat like hand-written ones:

| module   | job                                                                              |
|----------|----------------------------------------------------------------------------------|
| options  | the knobs (`--generated`, `--seed`...) and the run's budget                       |
| schemas  | the OpenAPI documents schemathesis generates from (per field; narrowed positive)  |
| strategy | schemathesis strategies, drawn reproducibly from a seed                           |
| build    | from a drawn body to a case: a valid request around the mutation, expectations   |
| plan     | how many of which, spread over fields and rules, fitted to the run's budget       |
| shrink   | a failure cut down to the smallest request that still fails the same way          |
| export   | a failure as a plain case file and a curl script                                  |
| session  | the run: cases, then shrinking and export of the generated failures               |

The package imports nothing itself, so that `conformance.generate.options` stays cheap to load;
docs/how-to/generated.md is the user's guide.
"""
