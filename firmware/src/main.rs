//! Runs the `.sprig` model embedded at build time (see `build.rs`) `RUNS` times on the board and
//! reports over defmt: cycles per inference, peak stack, optionally cycles per operator (feature
//! `profile`), and one line `output [v0, v1, …]` holding every output value. Exits through
//! semihosting: 0 on success, 1 on a runtime error, 3 on a HardFault, 101 on a panic.
#![no_std]
#![no_main]

use core::cell::{Cell, UnsafeCell};
use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use critical_section::Mutex;
use sprig_runtime::{Error, Model, Session};

#[cfg(sprig_log_rtt)]
use defmt_rtt as _;
#[cfg(not(sprig_log_rtt))]
use defmt_semihosting as _;
#[cfg(sprig_log_rtt)]
use panic_probe as _;

/// Byte data aligned for zero-copy f32 views.
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

#[allow(dead_code)]
mod model {
    use super::Aligned;
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

/// A static handed out once as `&'static mut` (the arena, the session plan's steps).
struct Once<T> {
    taken: Mutex<Cell<bool>>,
    buf: UnsafeCell<T>,
}

// SAFETY: `buf` is only reachable through `take`, which hands out one `&mut` for the program's
// lifetime (guarded by `taken` inside a critical section).
unsafe impl<T> Sync for Once<T> {}

impl<T> Once<T> {
    const fn new(v: T) -> Self {
        Once { taken: Mutex::new(Cell::new(false)), buf: UnsafeCell::new(v) }
    }

    // The `&mut` is unique: `taken` lets exactly one call through.
    #[allow(clippy::mut_from_ref)]
    fn take(&'static self) -> Option<&'static mut T> {
        let first = critical_section::with(|cs| !self.taken.borrow(cs).replace(true));
        // SAFETY: see `impl Sync`: the first caller gets the only reference.
        first.then(|| unsafe { &mut *self.buf.get() })
    }
}

/// The arena: zero-initialised (`.bss`, no flash).
static ARENA: Once<Aligned<[u8; model::ARENA_LEN]>> = Once::new(Aligned([0; model::ARENA_LEN]));

/// The session plan's steps (feature `plan`).
#[cfg(feature = "plan")]
static STEPS: Once<[sprig_runtime::Step<'static>; model::NUM_OPS]> = Once::new([sprig_runtime::Step::EMPTY; model::NUM_OPS]);

/// SysTick wraps (2^24 ticks each), counted by the SysTick exception.
static WRAPS: Mutex<Cell<u32>> = Mutex::new(Cell::new(0));

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let w = WRAPS.borrow(cs);
        w.set(w.get().wrapping_add(1));
    });
}

/// The time source: DWT CYCCNT where the core has one that counts, SysTick ticks otherwise.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    #[cfg_attr(not(sprig_dwt), allow(dead_code))]
    Dwt,
    SysTick,
}

impl Clock {
    fn now(self) -> u64 {
        match self {
            #[cfg(sprig_dwt)]
            Clock::Dwt => cortex_m::peripheral::DWT::cycle_count() as u64,
            #[cfg(not(sprig_dwt))]
            Clock::Dwt => 0,
            Clock::SysTick => loop {
                let w1 = critical_section::with(|cs| WRAPS.borrow(cs).get());
                let v = SYST::get_current();
                let w2 = critical_section::with(|cs| WRAPS.borrow(cs).get());
                if w1 == w2 {
                    break ((w1 as u64) << 24) | (0x00FF_FFFF - v) as u64;
                }
            },
        }
    }

    /// Elapsed units since `t0`, allowing for one wrap of the 32-bit cycle counter.
    fn since(self, t0: u64) -> u64 {
        let t = self.now();
        match self {
            Clock::Dwt => (t as u32).wrapping_sub(t0 as u32) as u64,
            Clock::SysTick => t.wrapping_sub(t0),
        }
    }
}

extern "C" {
    /// Lowest address the stack may grow down to (end of `.bss`/`.uninit`; cortex-m-rt).
    static _stack_end: u32;
    /// Initial stack pointer (top of RAM; cortex-m-rt).
    static _stack_start: u32;
}

const PAINT: u32 = 0x5A5A_A5A5;

/// Lowest painted address (the scan for the deepest use starts there).
static PAINTED_FROM: AtomicUsize = AtomicUsize::new(0);

/// Fills up to `depth` bytes of the unused stack below the caller with `PAINT`.
#[inline(never)]
fn paint_stack(depth: usize) {
    let hi = (cortex_m::register::msp::read() as usize).saturating_sub(64) & !3;
    let lo = (addr_of!(_stack_end) as usize).max(hi.saturating_sub(depth));
    PAINTED_FROM.store(lo, Ordering::Relaxed);
    let mut p = lo;
    while p < hi {
        // SAFETY: [lo, hi) is the part of the stack region below the current frame (minus a
        // margin for this function's own spills), which nothing live occupies.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Deepest stack use since `paint_stack`, in bytes below the initial stack pointer (a use deeper
/// than the painted depth reads as that depth).
fn peak_stack() -> usize {
    let top = addr_of!(_stack_start) as usize;
    let mut p = PAINTED_FROM.load(Ordering::Relaxed).max(addr_of!(_stack_end) as usize);
    // SAFETY: reads words of the stack region [lo, top), which is mapped RAM.
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

#[cfg(not(sprig_log_rtt))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    exit(101)
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault: pc {=u32:#010x}, lr {=u32:#010x}", ef.pc(), ef.lr());
    exit(3)
}

#[entry]
fn main() -> ! {
    match run() {
        Ok(()) => exit(0),
        Err(e) => {
            defmt::error!("sprig error: {}", e);
            exit(1)
        }
    }
}

fn run() -> Result<(), Error> {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        defmt::error!("core peripherals already taken");
        exit(1)
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(0x00FF_FFFF);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();
    #[allow(unused_mut)]
    let mut clock = Clock::SysTick;
    #[cfg(sprig_dwt)]
    {
        cp.DCB.enable_trace();
        cp.DWT.enable_cycle_counter();
        let c0 = cortex_m::peripheral::DWT::cycle_count();
        cortex_m::asm::delay(64);
        if cortex_m::peripheral::DWT::cycle_count() != c0 {
            clock = Clock::Dwt;
        }
    }

    #[cfg(feature = "bare")]
    {
        defmt::println!("sprig firmware (bare harness): board {=str}", model::BOARD);
        defmt::println!("output {=[?]}", [0f32; 0]);
        let _ = clock;
        return Ok(());
    }
    #[cfg(not(feature = "bare"))]
    run_model(clock)
}

#[cfg(not(feature = "bare"))]
fn run_model(clock: Clock) -> Result<(), Error> {
    let model = Model::parse(&model::MODEL.0)?;
    let Some(Aligned(arena)) = ARENA.take() else {
        defmt::error!("arena already taken");
        exit(1)
    };
    #[cfg(not(feature = "plan"))]
    let mut session = Session::new(&model, arena)?;
    #[cfg(feature = "plan")]
    let plan = {
        let Some(steps) = STEPS.take() else {
            defmt::error!("plan steps already taken");
            exit(1)
        };
        sprig_runtime::Plan::new(&model, &mut steps[..])?
    };
    #[cfg(feature = "plan")]
    let mut session = Session::with_plan(&model, arena, &plan)?;
    defmt::println!(
        "sprig firmware: board {=str}, model {=str} ({=usize} B, {=usize} ops), arena {=usize} B, flash {=u32} B, RAM {=u32} B",
        model::BOARD,
        model::MODEL_NAME,
        model::MODEL.0.len(),
        model::NUM_OPS,
        model::ARENA_LEN,
        model::FLASH_LEN,
        model::RAM_LEN
    );

    #[cfg(feature = "profile")]
    let mut per_op = [0u64; model::NUM_OPS];
    #[cfg(feature = "profile")]
    let mut per_op_stack = [0usize; model::NUM_OPS];
    let (mut min, mut max, mut sum) = (u64::MAX, 0u64, 0u64);
    paint_stack(usize::MAX);
    for _ in 0..model::RUNS {
        // The planner may reuse an input's buffer once it is consumed: refill before each run.
        for (i, raw) in model::INPUTS.iter().enumerate() {
            let x = session.input_mut(i)?;
            for (v, b) in x.iter_mut().zip(raw.0.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        #[cfg(feature = "profile")]
        let mut t_op = 0u64;
        let t0 = clock.now();
        session.run_with_in::<{ model::OPS }>(|_op, _after| {
            #[cfg(feature = "profile")]
            if _after {
                per_op[_op] += clock.since(t_op);
                per_op_stack[_op] = per_op_stack[_op].max(peak_stack());
            } else {
                paint_stack(32 * 1024);
                t_op = clock.now();
            }
        })?;
        let dt = clock.since(t0);
        min = min.min(dt);
        max = max.max(dt);
        sum += dt;
    }
    #[cfg(not(feature = "profile"))]
    let stack = peak_stack();
    #[cfg(feature = "profile")]
    let stack = per_op_stack.iter().copied().max().unwrap_or(0);
    let mean = sum / model::RUNS as u64;
    #[cfg(feature = "profile")]
    defmt::println!("profile build: the latencies below include stack painting between operators");
    match clock {
        Clock::Dwt => defmt::println!(
            "latency: {=u32} runs, cycles per inference: min {=u64}, mean {=u64}, max {=u64} (DWT CYCCNT)",
            model::RUNS,
            min,
            mean,
            max
        ),
        Clock::SysTick => defmt::println!(
            "latency: {=u32} runs, SysTick ticks per inference: min {=u64}, mean {=u64}, max {=u64} (no counting DWT CYCCNT); under QEMU -icount shift=0 that is about {=u64} instructions",
            model::RUNS,
            min,
            mean,
            max,
            min * 1_000_000_000 / (model::SYSCLK_HZ.max(1) as u64)
        ),
    }
    defmt::println!("stack: peak {=usize} B", stack);
    #[cfg(feature = "profile")]
    for (i, t) in per_op.iter().enumerate() {
        if let Some(o) = model.op(i) {
            let unit = if clock == Clock::Dwt { "cycles" } else { "SysTick ticks" };
            defmt::println!(
                "op {=usize} {=str} (kind {=u16}): {=u64} {=str} per inference, peak stack {=usize} B",
                i,
                o.op.name(),
                o.op.kind_code(),
                t / model::RUNS as u64,
                unit,
                per_op_stack[i]
            );
        }
    }

    let mut out = [0f32; model::OUTPUT_LEN];
    let mut k = 0;
    for i in 0..model.num_outputs() {
        let y = session.output(i)?;
        out[k..k + y.len()].copy_from_slice(y);
        k += y.len();
    }
    defmt::println!("output {=[?]}", &out[..k]);
    Ok(())
}
