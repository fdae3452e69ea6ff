//! The kick: KVM_RUN returns only on a guest exit, so a timer thread sends the vCPU thread a
//! signal every period; the signal ends KVM_RUN with EINTR and the machine loop polls its
//! devices (timers raise their interrupts then). Without an in-kernel irqchip this is how a
//! guest spinning at full speed still sees its timer interrupts.
//!
//! A signal that arrives while the thread is outside KVM_RUN is lost; the next one comes a
//! period later, so an interrupt is at most two periods late.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// The signal used for kicks: the first real-time signal, left alone by the Rust runtime.
fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// A thread kicking the thread that created it, every `period`, until dropped.
pub struct Kicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Kicker {
    pub fn start(period: Duration) -> Result<Kicker, vmm_sys_util::errno::Error> {
        static INSTALL: Once = Once::new();
        let mut installed = Ok(());
        INSTALL.call_once(|| {
            installed = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick);
        });
        installed?;
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(period);
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                // SAFETY: `target` is the thread that owns this Kicker; `Drop` stops and joins
                // this thread before the Kicker (and so its owner's stack frame) goes away, so
                // the thread id is never used after the target could have exited. The signal
                // has a handler installed above, so it only interrupts a blocking call.
                unsafe { libc::pthread_kill(target, kick_signal()) };
            }
        });
        Ok(Kicker { stop, thread: Some(thread) })
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
