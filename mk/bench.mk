# benchmarks (issue: make bench); see bench/
