;; spin never returns: only the fuel stops it.
(module
  (func (export "spin")
    (loop $l (br $l))))
