//! `KvmEngine`: the virtual PC's CPU on KVM as an [`Engine`] (see `emu::engine` for the
//! contract and `mod.rs` for what runs where). KVM counts no instructions: it ignores
//! `Limit::instructions`, and a deadline is met at the next exit (the kick comes every
//! millisecond).

use super::kick::Kicker;
use super::{KvmError, KvmVm, VmExit};
use emu::cpu::Cpu;
use emu::engine::{Engine, EngineError, EngineKind, Exit, GuestDebug, GuestDebugKinds, Limit};
use emu::exception::Stop;
use std::time::Duration;

/// How often the guest is kicked out of KVM_RUN so the devices are polled.
const KICK_PERIOD: Duration = Duration::from_millis(1);

/// The virtual PC's CPU on KVM.
pub struct KvmEngine {
    vm: KvmVm,
    _kicker: Kicker,
    ready: bool,
    if_flag: bool,
    /// STRATA_TRACE_KVM set: every exit is printed to stderr.
    trace: bool,
    /// Ask KVM for interrupt-window exits (not on kvm_pvm, see `deliver_on_tier0`: the next
    /// kick or exit serves instead).
    use_window: bool,
    /// Deliver external interrupts through the guest's IDT with tier 0's delivery code instead
    /// of KVM's injection. On kvm_pvm an interrupt injected at any exit but HLT is pushed with a
    /// zero return address (seen with the 32-bit protected-mode test kernels), so there the
    /// state makes a round trip instead.
    deliver_on_tier0: bool,
    /// What this host's KVM_SET_GUEST_DEBUG does (probed on first use by a debugger).
    debug_support: Option<super::guest_debug::GuestDebugSupport>,
    /// What a debugger armed (a debug exit raises its flags).
    debug_armed: Option<GuestDebug>,
}

fn err(e: KvmError) -> EngineError {
    EngineError { engine: "kvm", message: e.to_string() }
}

impl KvmEngine {
    /// A KVM VM over `cpu`'s RAM. The state is loaded by `Engine::load_state`.
    ///
    /// # Errors
    /// KVM is not available, or refused the set-up.
    pub fn new(cpu: &Cpu) -> Result<KvmEngine, KvmError> {
        let vm = KvmVm::for_cpu(cpu)?;
        // Tier 0's TSC ticks at the machine's announced 1 GHz; ask KVM to scale to the same rate
        // so the guest's clock keeps its pace across switches. Hosts without TSC scaling (and
        // kvm_pvm, which also ignores TSC writes) keep the host rate: documented, not fatal.
        let _ = vm.vcpu.set_tsc_khz(emu::machine::TSC_KHZ as u32);
        let kicker = Kicker::start(KICK_PERIOD).map_err(|e| KvmError::Ioctl("signal handler", e))?;
        let trace = std::env::var_os("STRATA_TRACE_KVM").is_some();
        let pvm = super::is_pvm();
        Ok(KvmEngine {
            vm,
            _kicker: kicker,
            ready: false,
            if_flag: false,
            trace,
            use_window: !pvm,
            deliver_on_tier0: pvm,
            debug_support: None,
            debug_armed: None,
        })
    }
}

impl Engine for KvmEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Kvm
    }

    fn load_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError> {
        self.vm.set_state(cpu).map_err(err)?;
        self.if_flag = cpu.state.rflags_other & emu::state::rflags::IF != 0;
        // Tier 0 hands over at a boundary outside any interrupt shadow (the machine loop runs
        // the shadowed instruction first), so IF alone says whether an interrupt can come in;
        // a halted CPU restored or switched in must be able to take one before KVM ever runs.
        self.ready = self.if_flag;
        Ok(())
    }

    fn store_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError> {
        self.vm.get_state(cpu).map_err(err)
    }

    fn run(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, EngineError> {
        let want_interrupt = limit.want_interrupt;
        self.vm.request_window(want_interrupt && self.use_window);
        let exit = self.vm.run(&cpu.ram, cpu.bus.as_mut()).map_err(err)?;
        self.ready = self.vm.ready_for_interrupt();
        self.if_flag = self.vm.if_flag();
        if self.trace {
            let rip = self.vm.vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
            eprintln!(
                "strata-kvm: {exit:?} rip {rip:#x} want {want_interrupt} ready {} if {}",
                self.ready, self.if_flag
            );
        }
        Ok(match exit {
            VmExit::Debug => {
                // A debugger's stop: the machine loop sees the flag before anything else runs.
                if let Some(debug) = &self.debug_armed {
                    let (exception, dr6) = self.vm.last_debug;
                    debug.report(super::guest_debug::hit_of(exception, dr6));
                }
                Exit::Poll
            }
            VmExit::Io | VmExit::InterruptWindow => Exit::Poll,
            VmExit::Interrupted if limit.deadline.is_some_and(|d| std::time::Instant::now() >= d) => Exit::Limit,
            VmExit::Interrupted => Exit::Poll,
            VmExit::Hlt => Exit::Stop(Stop::Halt),
            VmExit::Shutdown => Exit::TripleFault,
            VmExit::EmulationFailure => Exit::Unemulated,
        })
    }

    fn interrupt_ready(&self, _cpu: &Cpu) -> bool {
        self.ready
    }

    fn interrupts_enabled(&self, _cpu: &Cpu) -> bool {
        self.if_flag
    }

    fn inject_interrupt(&mut self, cpu: &mut Cpu, vector: u8) -> Result<Option<Exit>, EngineError> {
        if self.trace {
            eprintln!("strata-kvm: interrupt vector {vector:#x}");
        }
        if self.deliver_on_tier0 {
            self.vm.get_state(cpu).map_err(err)?;
            if cpu.deliver(emu::system::Event::External(vector)).is_err() {
                return Ok(Some(Exit::TripleFault));
            }
            self.vm.set_state(cpu).map_err(err)?;
        } else {
            self.vm.inject(vector).map_err(err)?;
        }
        self.ready = false;
        Ok(None)
    }

    fn flush_code(&mut self, _cpu: &mut Cpu) {
        // KVM fetches guest code from RAM afresh: there is nothing decoded to drop.
    }

    fn set_guest_debug(&mut self, debug: Option<&GuestDebug>) -> Result<bool, EngineError> {
        let Some(debug) = debug else {
            self.debug_armed = None;
            self.vm
                .vcpu
                .set_guest_debug(&Default::default())
                .map_err(|e| err(KvmError::Ioctl("KVM_SET_GUEST_DEBUG", e)))?;
            return Ok(true);
        };
        // Only what the probe saw work here; the rest stays with tier 0.
        let Some(kinds) = self.guest_debug_kinds() else { return Ok(false) };
        if !debug.fits(&kinds) {
            return Ok(false);
        }
        let request = super::guest_debug::request_for(debug);
        self.vm.vcpu.set_guest_debug(&request).map_err(|e| err(KvmError::Ioctl("KVM_SET_GUEST_DEBUG", e)))?;
        self.debug_armed = Some(debug.clone());
        Ok(true)
    }

    fn guest_debug_kinds(&mut self) -> Option<GuestDebugKinds> {
        // The probe makes a small VM of its own; on a loaded host that can fail once (a
        // stop then goes to tier 0, correctly but without KVM's help), so it is tried three
        // times before this call gives up (a later call probes again).
        for _ in 0..3 {
            if self.debug_support.is_some() {
                break;
            }
            match super::guest_debug::probe() {
                Ok(s) => self.debug_support = Some(s),
                Err(e) if self.trace => eprintln!("strata-kvm: guest-debug probe failed: {e}"),
                Err(_) => {}
            }
        }
        self.debug_support.map(Into::into)
    }
}
