;; boom executes a genuine unreachable: a trap, not fuel exhaustion.
(module
  (func (export "boom") (unreachable)))
