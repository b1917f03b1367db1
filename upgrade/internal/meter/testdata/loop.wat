;; count(n) loops n times (at least once). Segments: the entry (loop: cost
;; 0, no charge), the loop body (8 instructions; its end costs 0) and the
;; code after it (local.get), each charged SegmentFuel (4) more for the
;; check itself, so count(n) uses 12n + 5 fuel.
(module
  (func (export "count") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))
