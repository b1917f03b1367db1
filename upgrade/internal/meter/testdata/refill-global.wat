;; A hostile module that writes global 1, which does not exist: after
;; instrumentation it would be the fuel global (index = number of globals).
;; Assembled with wat2wasm --no-check.
(module
  (global $g (mut i64) (i64.const 0))
  (func (export "refill")
    (global.set 1 (i64.const 9000000000000000000))))
