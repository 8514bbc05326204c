plan "predicates" {}

database "heroku" {
  url = "postgres://app@heroku.example.com/app"
}

# A field read inside a predicate is checked against the element of the
# list the predicate runs on (.field and #.field alike), in every builtin
# that takes one.
check "counts" {
  uses     = "row_counts"
  database = database.heroku
  assert { that = "all(output.tables, {.rws > 0})" } # ERROR: Unsupported attribute
  assert { that = "any(output.tables, {.nme == 'x'})" } # ERROR: Unsupported attribute
  assert { that = "none(output.tables, {#.rws == 0})" } # ERROR: Unsupported attribute
  assert { that = "one(output.tables, {.rows == 0 && .nam == 'x'})" } # ERROR: Unsupported attribute
  assert { that = "len(filter(output.tables, {.rosw == 0})) == 0" } # ERROR: Unsupported attribute
  assert { that = "len(map(output.tables, {.nmae})) > 0" } # ERROR: Unsupported attribute
  assert { that = "count(output.tables, {.rows > 0 || .size > 0}) > 0" } # ERROR: Unsupported attribute
  assert { that = "sum(output.tables, {.row}) > 0" } # ERROR: Unsupported attribute
  assert { that = "find(output.tables, {.Name == 'x'}) != nil" } # ERROR: Unsupported attribute
  assert { that = "findIndex(output.tables, {.rows_ == 0}) < 0" } # ERROR: Unsupported attribute
  assert { that = "findLast(output.tables, {.table == 'x'}) == nil" } # ERROR: Unsupported attribute
  assert { that = "findLastIndex(output.tables, {#.nme == 'x'}) < 0" } # ERROR: Unsupported attribute
  assert { that = "len(groupBy(output.tables, {.nme})) > 0" } # ERROR: Unsupported attribute
  assert { that = "len(sortBy(output.tables, {.row}, 'desc')) > 0" } # ERROR: Unsupported attribute
  assert { that = "reduce(output.tables, {#acc + #.rws}, 0) > 0" } # ERROR: Unsupported attribute
  # Pipes, predicates without braces, chained builtins, a field of what find returns.
  assert { that = "output.tables | all(.rws > 0)" } # ERROR: Unsupported attribute
  assert { that = "all(filter(output.tables, {.rows > 0}), {.nme != ''})" } # ERROR: Unsupported attribute
  assert { that = "find(output.tables, {.rows > 0}).nme != ''" } # ERROR: Unsupported attribute
  assert { that = "first(output.tables).rws > 0" } # ERROR: Unsupported attribute
  # An element's field compared with a literal of another kind.
  assert { that = "all(output.tables, {.rows != '0'})" } # ERROR: Comparison of different kinds
  assert {
    that    = "output.total > 0"
    message = "empty: {{ filter(output.tables, {.rwos == 0}) }}" # ERROR: Unsupported attribute
  }
}
