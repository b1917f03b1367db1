;; Bulk memory and table operations are charged by their size operand.
(module
  (memory (export "memory") 1 4)
  (table $t 1 100000 funcref)
  (data $d "0123456789abcdef")
  (func $nop)
  (elem $e func $nop $nop)
  ;; fill(n): memory.fill of n bytes.
  (func (export "fill") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 7) (local.get $n)))
  ;; copy(n): memory.copy of n bytes.
  (func (export "copy") (param $n i32)
    (memory.copy (i32.const 100) (i32.const 0) (local.get $n)))
  ;; init(n): memory.init of n bytes of the data segment.
  (func (export "init") (param $n i32)
    (memory.init $d (i32.const 0) (i32.const 0) (local.get $n)))
  ;; grow(n): memory.grow by n pages.
  (func (export "grow") (param $n i32) (result i32)
    (memory.grow (local.get $n)))
  ;; tgrow(n): table.grow by n elements.
  (func (export "tgrow") (param $n i32) (result i32)
    (table.grow $t (ref.null func) (local.get $n)))
  ;; tfill(n), tinit(n), tcopy(n).
  (func (export "tfill") (param $n i32)
    (table.fill $t (i32.const 0) (ref.null func) (local.get $n)))
  (func (export "tinit") (param $n i32)
    (table.init $t $e (i32.const 0) (i32.const 0) (local.get $n)))
  (func (export "tcopy") (param $n i32)
    (table.copy $t $t (i32.const 0) (i32.const 0) (local.get $n))))
