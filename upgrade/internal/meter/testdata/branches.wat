;; Segments start after if, else and end, where branches land. The
;; figures below leave out SegmentFuel (4), added to every charged segment.
(module
  ;; pick(c): entry segment local.get, if (2); then: 3; else: 1;
  ;; after: i32.const, i32.add (2). pick(1) uses 7, pick(0) uses 5.
  (func (export "pick") (param $c i32) (result i32)
    (if (result i32) (local.get $c)
      (then (i32.const 1) (i32.const 2) (i32.add))
      (else (i32.const 10)))
    (i32.const 100)
    (i32.add))
  ;; skip(c): the block's segment (local.get, br_if, i32.const, drop: 4;
  ;; block, nop and end cost 0) is charged whole even when br_if skips
  ;; the rest; after it, i32.const (1). skip(c) uses 5 either way.
  (func (export "skip") (param $c i32) (result i32)
    (block $b
      (br_if $b (local.get $c))
      (nop)
      (drop (i32.const 5)))
    (i32.const 7)))
