//! wasmi with Paddock's limits: fuel from instantiation on, memory and
//! table caps, call-depth and value-stack caps, strict parsing limits; and
//! the mapping of every way a run can end to an exit code or a [`WasmError`].

use wasmi::errors::{ErrorKind as WasmiKind, InstantiationError, MemoryError, TableError};
use wasmi::{
    Config, EnforcedLimits, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder,
    TrapCode,
};

use crate::wasm::host::{self, Host};
use crate::wasm::{ErrorKind, WasmError};

/// Calls deeper than this trap with "call stack exhausted".
pub const MAX_CALL_DEPTH: usize = 10_000;
/// The interpreter's value stack (heap memory, outside the linear-memory cap).
pub const MAX_STACK_BYTES: usize = 4 << 20;
/// Table elements per table.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// The largest module file the runner reads.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub fuel: u64,
    /// Linear-memory cap in bytes.
    pub memory_bytes: u64,
}

/// What a store holds: the WASI host and the resource limiter.
#[derive(Debug)]
pub struct StoreData {
    pub host: Host,
    limits: StoreLimits,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// `_start` returned (0) or the module called `proc_exit`.
    Exit(i32),
    /// The module could not run to its end.
    Failed(WasmError),
}

/// The engine: fuel metering on, stacks capped, parsing limited.
pub fn engine() -> Engine {
    let mut c = Config::default();
    c.consume_fuel(true)
        .set_max_recursion_depth(MAX_CALL_DEPTH)
        .set_max_stack_height(MAX_STACK_BYTES)
        .enforced_limits(EnforcedLimits::strict())
        // preview1 is 32-bit; memory64 only widens the surface.
        .wasm_memory64(false);
    Engine::new(&c)
}

/// Parses, validates and (lazily) translates a module, binary or text.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Module, WasmError> {
    Module::new(engine, bytes).map_err(|e| classify(&e, ErrorKind::InvalidModule))
}

/// Instantiates `module` in a fresh store (running its start function under
/// the same fuel) and calls `_start`. Also returns whether the module's
/// stderr output ended a line.
pub fn run(engine: &Engine, module: &Module, host: Host, limits: Limits) -> (Outcome, bool) {
    let linker = match linker(engine, module) {
        Ok(l) => l,
        Err(e) => return (Outcome::Failed(e), true),
    };
    let (outcome, host) = run_linked(engine, &linker, module, host, limits);
    (outcome, host.stderr_at_line_start())
}

/// The WASI linker for `module`: built once, used for every instance of it
/// (it holds host functions only, no store state).
pub fn linker(engine: &Engine, module: &Module) -> Result<Linker<StoreData>, WasmError> {
    let mut linker = Linker::new(engine);
    host::add_to_linker(&mut linker, module)
        .map_err(|e| WasmError::new(ErrorKind::Runner, e.to_string()))?;
    Ok(linker)
}

/// One invocation: a fresh [`Store`] holding `host`, a fresh instance of
/// `module` (its start function under the fuel), then `_start`. Nothing of
/// the store survives the call; the host is handed back for its output.
pub fn run_linked(
    engine: &Engine,
    linker: &Linker<StoreData>,
    module: &Module,
    host: Host,
    limits: Limits,
) -> (Outcome, Host) {
    let data = StoreData {
        host,
        limits: StoreLimitsBuilder::new().build(),
    };
    let mut store = Store::new(engine, data);
    let mut outcome = run_in(&mut store, linker, module, limits);
    let data = store.into_data();
    if data.host.flooded() {
        outcome = Outcome::Failed(WasmError::new(
            ErrorKind::OutputLimit,
            "output passed the cap (limits.output); the invocation was stopped",
        ));
    }
    (outcome, data.host)
}

fn run_in(
    store: &mut Store<StoreData>,
    linker: &Linker<StoreData>,
    module: &Module,
    limits: Limits,
) -> Outcome {
    let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    store.data_mut().limits = StoreLimitsBuilder::new()
        .memory_size(memory)
        .table_elements(MAX_TABLE_ELEMENTS)
        .instances(1)
        .memories(1)
        .tables(16)
        .build();
    store.limiter(|d| &mut d.limits);
    if let Err(e) = store.set_fuel(limits.fuel) {
        return Outcome::Failed(WasmError::new(ErrorKind::Runner, e.to_string()));
    }
    let instance = match linker.instantiate_and_start(&mut *store, module) {
        Ok(i) => i,
        Err(e) => return ended(&e, ErrorKind::Instantiate),
    };
    let start = match instance.get_typed_func::<(), ()>(&*store, "_start") {
        Ok(f) => f,
        Err(_) => {
            return Outcome::Failed(WasmError::new(
                ErrorKind::Link,
                "the module exports no function _start: [] -> []",
            ))
        }
    };
    match start.call(&mut *store, ()) {
        Ok(()) => Outcome::Exit(0),
        Err(e) => ended(&e, ErrorKind::Trap),
    }
}

/// An error that ends a run: `proc_exit` is an exit, the rest failures.
fn ended(e: &wasmi::Error, default: ErrorKind) -> Outcome {
    match e.i32_exit_status() {
        Some(code) => Outcome::Exit(code),
        None => Outcome::Failed(classify(e, default)),
    }
}

/// The kind of a wasmi error.
pub fn classify(e: &wasmi::Error, default: ErrorKind) -> WasmError {
    let kind = match e.kind() {
        _ if e.as_trap_code() == Some(TrapCode::OutOfFuel) => ErrorKind::OutOfFuel,
        WasmiKind::Memory(
            MemoryError::ResourceLimiterDeniedAllocation
            | MemoryError::OutOfSystemMemory
            | MemoryError::OutOfBoundsGrowth
            | MemoryError::MinimumSizeOverflow
            | MemoryError::MaximumSizeOverflow,
        ) => ErrorKind::MemoryLimit,
        WasmiKind::TrapCode(TrapCode::GrowthOperationLimited) => ErrorKind::MemoryLimit,
        WasmiKind::Table(
            TableError::ResourceLimiterDeniedAllocation
            | TableError::OutOfSystemMemory
            | TableError::MinimumSizeOverflow
            | TableError::MaximumSizeOverflow,
        ) => ErrorKind::TableLimit,
        WasmiKind::Instantiation(InstantiationError::FailedToInstantiateMemory(_)) => {
            ErrorKind::MemoryLimit
        }
        WasmiKind::Instantiation(InstantiationError::FailedToInstantiateTable(_)) => {
            ErrorKind::TableLimit
        }
        WasmiKind::Linker(_) => ErrorKind::Link,
        WasmiKind::TrapCode(_) | WasmiKind::Host(_) | WasmiKind::Message(_) => ErrorKind::Trap,
        WasmiKind::Read(_)
        | WasmiKind::Wasm(_)
        | WasmiKind::Translation(_)
        | WasmiKind::UserLimits(_)
        | WasmiKind::ImplementationLimits(_)
        | WasmiKind::Ir(_)
        | WasmiKind::Wat(_) => ErrorKind::InvalidModule,
        WasmiKind::Instantiation(_) => ErrorKind::Instantiate,
        _ => default,
    };
    WasmError::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_wat(wat: &str, fuel: u64, memory: u64) -> Outcome {
        run_wat_ended(wat, fuel, memory).0
    }

    fn run_wat_ended(wat: &str, fuel: u64, memory: u64) -> (Outcome, bool) {
        let e = engine();
        let m = match compile(&e, wat.as_bytes()) {
            Ok(m) => m,
            Err(err) => return (Outcome::Failed(err), true),
        };
        let host = Host::new(vec!["m".into()], Vec::new(), None).unwrap();
        run(
            &e,
            &m,
            host,
            Limits {
                fuel,
                memory_bytes: memory,
            },
        )
    }

    fn kind(o: Outcome) -> String {
        match o {
            Outcome::Failed(e) => e.kind,
            Outcome::Exit(c) => format!("exit {c}"),
        }
    }

    #[test]
    fn wasm_loop_runs_out_of_fuel() {
        let o = run_wat(
            r#"(module (func (export "_start") (loop (br 0))))"#,
            1_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "out_of_fuel");
    }

    #[test]
    fn wasm_start_function_loop_runs_out_of_fuel() {
        let o = run_wat(
            r#"(module (func $s (loop (br 0))) (start $s) (func (export "_start")))"#,
            1_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "out_of_fuel");
    }

    #[test]
    fn wasm_proc_exit_is_the_exit_code() {
        let o = run_wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
                 (func (export "_start") (call $e (i32.const 7))))"#,
            1_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "exit 7");
    }

    #[test]
    fn wasm_memory_over_cap_fails_to_instantiate() {
        let o = run_wat(
            r#"(module (memory 65536) (func (export "_start")))"#,
            1_000_000,
            16 << 20,
        );
        assert_eq!(kind(o), "memory_limit");
    }

    #[test]
    fn wasm_memory_grow_past_cap_returns_minus_one() {
        let o = run_wat(
            r#"(module (memory 1)
                 (func (export "_start")
                   (if (i32.ne (memory.grow (i32.const 65535)) (i32.const -1))
                     (then unreachable))))"#,
            1_000_000,
            16 << 20,
        );
        assert_eq!(kind(o), "exit 0");
    }

    #[test]
    fn wasm_table_grow_past_cap_returns_minus_one() {
        let o = run_wat(
            r#"(module (table 1 funcref)
                 (func (export "_start")
                   (if (i32.ne (table.grow (ref.null func) (i32.const 10000000)) (i32.const -1))
                     (then unreachable))))"#,
            1_000_000_000,
            16 << 20,
        );
        assert_eq!(kind(o), "exit 0");
    }

    #[test]
    fn wasm_stderr_line_state_is_tracked() {
        let (_, at_line_start) =
            run_wat_ended(r#"(module (func (export "_start")))"#, 1000, 1 << 20);
        assert!(at_line_start);
    }

    #[test]
    fn wasm_infinite_recursion_traps() {
        let o = run_wat(
            r#"(module (func $f (call $f)) (func (export "_start") (call $f)))"#,
            1_000_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "trap");
    }

    #[test]
    fn wasm_unknown_import_is_a_link_error() {
        let o = run_wat(
            r#"(module (import "env" "system" (func (param i32) (result i32)))
                 (func (export "_start")))"#,
            1_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "link");
    }

    #[test]
    fn wasm_unimplemented_wasi_call_returns_enosys() {
        let o = run_wat(
            r#"(module (import "wasi_snapshot_preview1" "sock_accept"
                   (func $a (param i32 i32 i32) (result i32)))
                 (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")
                   (call $e (call $a (i32.const 0) (i32.const 0) (i32.const 0)))))"#,
            1_000_000,
            1 << 20,
        );
        assert_eq!(kind(o), "exit 52");
    }

    #[test]
    fn wasm_bad_magic_is_invalid_module() {
        let e = engine();
        let err = compile(&e, b"\0asn\x01\0\0\0").unwrap_err();
        assert_eq!(err.kind, "invalid_module");
    }

    #[test]
    fn wasm_huge_leb_is_invalid_module() {
        let e = engine();
        // Type section whose size is a 5-byte LEB for 2^32.
        let err = compile(&e, b"\0asm\x01\0\0\0\x01\x80\x80\x80\x80\x10").unwrap_err();
        assert_eq!(err.kind, "invalid_module");
    }
}
