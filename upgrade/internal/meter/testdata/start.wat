;; A start function runs at instantiation in plain wasm; instrumented, it is
;; exported as __synapse_start for the host to call after setting the fuel.
(module
  (global $ran (export "ran") (mut i32) (i32.const 0))
  (func $init (global.set $ran (i32.const 1)))
  (start $init))
