# memory checkers, fuzzing, reload and fault passes; see fuzz/ and .ci/run
