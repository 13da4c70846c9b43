;; echo: copies stdin to stdout with WASI preview1 fd_read / fd_write.
;; Memory layout: 0..8 read iovec, 8 nread, 12 nwritten, 16..24 write iovec,
;; 64.. the buffer.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32)
    (loop $read
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 65472))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.load (i32.const 8)))
      ;; End of input: done.
      (if (i32.eqz (local.get $n)) (then (return)))
      (i32.store (i32.const 16) (i32.const 64))
      (i32.store (i32.const 20) (local.get $n))
      ;; Write until the whole chunk is out (fd_write may be partial).
      (loop $write
        (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12))
          (then (call $proc_exit (i32.const 1))))
        (i32.store (i32.const 16)
          (i32.add (i32.load (i32.const 16)) (i32.load (i32.const 12))))
        (i32.store (i32.const 20)
          (i32.sub (i32.load (i32.const 20)) (i32.load (i32.const 12))))
        (br_if $write (i32.gt_u (i32.load (i32.const 20)) (i32.const 0))))
      (br $read)))
)
