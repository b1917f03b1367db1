;; A hostile module that writes local 1 of a function with one local: after
;; instrumentation it would be the fuel scratch local.
;; Assembled with wat2wasm --no-check.
(module
  (func (export "f") (param i32)
    (local.set 1 (i64.const 1))))
