# Sourced by the benchmarks (not run): example_staff DEST writes the example
# staff list to DEST with its end dates ("Homeoffice bis") emptied. The
# benchmarks measure throughput on all 1,200 persons; with the end dates as
# they are, a person whose end date has passed would be left out, and the
# workload would shrink as the calendar moves. Expects $root.
example_staff() {
  awk -F, -v OFS=, '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == "end") end = i
              if (!end) { print "examples/staff.csv has no end column" > "/dev/stderr"; exit 1 } }
    NR > 1  { $end = "" }
    { print }' "$root/examples/staff.csv" >"$1"
}
