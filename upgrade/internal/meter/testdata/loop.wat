;; count(n) loops n times (at least once). Static costs: the function body
;; outside the loop is 3 instructions (loop, local.get, end), the loop body
;; 9, so count(n) uses 3 + 9n fuel.
(module
  (func (export "count") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))
