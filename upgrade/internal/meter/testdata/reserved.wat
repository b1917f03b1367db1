;; Exports the reserved fuel name itself.
(module
  (global $g (mut i64) (i64.const 123))
  (export "__synapse_fuel" (global $g)))
