;; set-version: the cheap upgrade package of the scale harnesses
;; (simnet/virtual, BenchmarkDemo with the fast guest).
;;
;; Reactor ABI (docs/wasm-abi.md) without Go's runtime: a bump allocator, and
;; an upgrade that copies the state with the string value of global.version
;; replaced by "1.2.0" (the version add-feature-flag upgrades to). It scans
;; the JSON once, tracking strings (with escapes) and nesting, so a "version"
;; key anywhere else is left alone. A state without a string global.version
;; traps. Each call costs microseconds, so a thousand executions stay cheap.
;;
;; Assemble (authoring only; tests use the committed .wasm):
;;   wat2wasm set-version.wat -o set-version.wasm
(module
  (memory (export "memory") 1)
  ;; the info JSON at 16, the new version at 128
  (data (i32.const 16) "{\22version\22:\221.2.0\22,\22description\22:\22set global.version to 1.2.0 (scale harness guest)\22,\22breaking\22:false}")
  (data (i32.const 128) "1.2.0")
  (global $heap (mut i32) (i32.const 1024))

  ;; alloc returns size bytes at the bump pointer, growing memory as needed.
  (func $alloc (export "alloc") (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $pages i32)
    (local.set $p (global.get $heap))
    (local.set $end
      (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $p)) (then unreachable))
    (local.set $pages
      (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))

  (func (export "get_upgrade_info") (result i64)
    (call $pack (i32.const 16) (i32.const 102)))

  ;; strEnd returns the index of the closing quote of the string whose
  ;; opening quote is at i (escapes skipped), or end when unterminated.
  (func $strEnd (param $i i32) (param $end i32) (result i32)
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (br_if $done (i32.eq (i32.load8_u (local.get $i)) (i32.const 34)))
        (if (i32.eq (i32.load8_u (local.get $i)) (i32.const 92))
          (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.get $i))

  ;; skipWS returns the first index at or after i that is not JSON whitespace.
  (func $skipWS (param $i i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (br_if $done
          (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                           (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.get $i))

  ;; keyIs reports whether the string content from s to e equals the n
  ;; bytes at k.
  (func $keyIs (param $s i32) (param $e i32) (param $k i32) (param $n i32) (result i32)
    (local $j i32)
    (if (i32.ne (i32.sub (local.get $e) (local.get $s)) (local.get $n)) (then (return (i32.const 0))))
    (block $done
      (loop $cmp
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $s) (local.get $j)))
                    (i32.load8_u (i32.add (local.get $k) (local.get $j))))
          (then (return (i32.const 0))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $cmp)))
    (i32.const 1))

  (data (i32.const 144) "global")
  (data (i32.const 152) "version")

  (func (export "upgrade") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $end i32) (local $c i32) (local $depth i32)
    (local $inGlobal i32) (local $s i32) (local $e i32) (local $j i32)
    (local $vs i32) (local $ve i32) (local $out i32) (local $n i32) (local $head i32)
    (local.set $i (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $vs (i32.const -1))
    (block $found
      (loop $scan
        (br_if $found (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (if (i32.eq (local.get $c) (i32.const 34)) ;; a string: a key when ':' follows
          (then
            (local.set $s (i32.add (local.get $i) (i32.const 1)))
            (local.set $e (call $strEnd (local.get $i) (local.get $end)))
            (local.set $j (call $skipWS (i32.add (local.get $e) (i32.const 1)) (local.get $end)))
            (if (i32.and (i32.lt_u (local.get $j) (local.get $end))
                         (i32.eq (i32.load8_u (local.get $j)) (i32.const 58)))
              (then
                (local.set $j (call $skipWS (i32.add (local.get $j) (i32.const 1)) (local.get $end)))
                ;; "global": {  at depth 1 → inside it at depth 2
                (if (i32.and (i32.eq (local.get $depth) (i32.const 1))
                             (call $keyIs (local.get $s) (local.get $e) (i32.const 144) (i32.const 6)))
                  (then
                    (if (i32.and (i32.lt_u (local.get $j) (local.get $end))
                                 (i32.eq (i32.load8_u (local.get $j)) (i32.const 123)))
                      (then (local.set $inGlobal (i32.const 1))))))
                ;; "version": "..."  directly in global
                (if (i32.and (i32.and (local.get $inGlobal) (i32.eq (local.get $depth) (i32.const 2)))
                             (call $keyIs (local.get $s) (local.get $e) (i32.const 152) (i32.const 7)))
                  (then
                    (if (i32.and (i32.lt_u (local.get $j) (local.get $end))
                                 (i32.eq (i32.load8_u (local.get $j)) (i32.const 34)))
                      (then
                        (local.set $vs (i32.add (local.get $j) (i32.const 1)))
                        (local.set $ve (call $strEnd (local.get $j) (local.get $end)))
                        (br $found)))))
                (local.set $i (local.get $j))
                (br $scan)))
            (local.set $i (i32.add (local.get $e) (i32.const 1)))
            (br $scan)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
          (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
          (then
            (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
            (if (i32.lt_s (local.get $depth) (i32.const 2)) (then (local.set $inGlobal (i32.const 0))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (if (i32.or (i32.eq (local.get $vs) (i32.const -1)) (i32.ge_u (local.get $ve) (local.get $end)))
      (then unreachable)) ;; no string global.version
    ;; out = state[:vs] + "1.2.0" + state[ve:]
    (local.set $head (i32.sub (local.get $vs) (local.get $ptr)))
    (local.set $n (i32.add (i32.add (local.get $head) (i32.const 5)) (i32.sub (local.get $end) (local.get $ve))))
    (local.set $out (call $alloc (local.get $n)))
    (memory.copy (local.get $out) (local.get $ptr) (local.get $head))
    (memory.copy (i32.add (local.get $out) (local.get $head)) (i32.const 128) (i32.const 5))
    (memory.copy (i32.add (i32.add (local.get $out) (local.get $head)) (i32.const 5))
                 (local.get $ve) (i32.sub (local.get $end) (local.get $ve)))
    (call $pack (local.get $out) (local.get $n)))
)
