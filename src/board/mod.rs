//! The box's front panel: a status LED and a rescan button on GPIO.
//!
//! In: the `[board]` section of the config (chip and pins, from the board profiles in
//! `board/*.toml`), an [`Indicator`] that the analysis and the server set, and a callback for
//! button presses. Out: the LED pattern of the current [`State`] and [`Press`]es, short or
//! long (the caller decides what each asks of the analysis: see `job::asked_by`).
//!
//! The logic ([`Led`], [`Button`], [`Panel`]) is written against the embedded-hal 1.0 digital
//! traits and tested with embedded-hal-mock; on the box, [`start`] opens the pins through the
//! kernel's GPIO character device (linux-embedded-hal's `CdevPin`) and runs the panel on a
//! thread that polls every [`TICK`]. A box without GPIO, or a config without pins, simply has
//! no panel: that is never an error.
//!
//! | state | LED |
//! | --- | --- |
//! | [`State::Idle`] | off |
//! | [`State::Analysing`] | slow blink (1 Hz) |
//! | [`State::Serving`] | steady |
//! | [`State::Error`] | fast blink (5 Hz) |

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin, OutputPin};

use crate::config::BoardSection;

/// How often the panel samples the button and updates the LED.
pub const TICK: Duration = Duration::from_millis(10);
/// The button must read the same for this long before a change counts (contact bounce).
pub const DEBOUNCE_MS: u64 = 30;
/// Held this long, a press is a long press (it fires while still held).
pub const LONG_PRESS_MS: u64 = 2000;
/// Half periods of the blink patterns.
const SLOW_HALF_MS: u64 = 500;
const FAST_HALF_MS: u64 = 100;

/// What the box is doing, as the LED shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle = 0,
    Analysing = 1,
    Serving = 2,
    Error = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Analysing,
            2 => State::Serving,
            3 => State::Error,
            _ => State::Idle,
        }
    }

    /// Whether the LED is lit at `now_ms` (blink phases count from 0).
    pub fn lit(self, now_ms: u64) -> bool {
        match self {
            State::Idle => false,
            State::Serving => true,
            State::Analysing => (now_ms / SLOW_HALF_MS) % 2 == 0,
            State::Error => (now_ms / FAST_HALF_MS) % 2 == 0,
        }
    }
}

/// The current [`State`], shared between whoever knows it (analysis, server) and the panel.
#[derive(Clone, Default)]
pub struct Indicator(Arc<AtomicU8>);

impl Indicator {
    pub fn new(state: State) -> Indicator {
        let i = Indicator::default();
        i.set(state);
        i
    }

    pub fn set(&self, state: State) {
        self.0.store(state as u8, Ordering::Relaxed);
    }

    pub fn get(&self) -> State {
        State::from_u8(self.0.load(Ordering::Relaxed))
    }
}

/// A button press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// Released before [`LONG_PRESS_MS`].
    Short,
    /// Held for [`LONG_PRESS_MS`].
    Long,
}

/// The status LED: writes the pin only when the pattern changes its level.
pub struct Led<P> {
    pin: P,
    /// The level last written; None before the first write.
    level: Option<bool>,
}

impl<P: OutputPin> Led<P> {
    pub fn new(pin: P) -> Led<P> {
        Led { pin, level: None }
    }

    /// Shows `state` as it should look at `now_ms`.
    pub fn show(&mut self, state: State, now_ms: u64) -> Result<(), P::Error> {
        let lit = state.lit(now_ms);
        if self.level != Some(lit) {
            if lit {
                self.pin.set_high()?;
            } else {
                self.pin.set_low()?;
            }
            self.level = Some(lit);
        }
        Ok(())
    }

    /// Gives the pin back (tests check what was written).
    pub fn release(self) -> P {
        self.pin
    }
}

/// The rescan button: debounced, short and long presses. The pin reads high while pressed
/// (an active-low button is inverted by the GPIO request, see [`start`]).
pub struct Button<P> {
    pin: P,
    /// The debounced level: true while pressed.
    pressed: bool,
    /// The raw level that differs from `pressed`, and since when.
    changing: Option<(bool, u64)>,
    /// When the debounced press began, and whether it already fired as long.
    down: Option<(u64, bool)>,
}

impl<P: InputPin> Button<P> {
    pub fn new(pin: P) -> Button<P> {
        Button {
            pin,
            pressed: false,
            changing: None,
            down: None,
        }
    }

    /// Samples the pin at `now_ms`; a press is reported once: a short one on release, a long
    /// one as soon as it has been held for [`LONG_PRESS_MS`].
    pub fn poll(&mut self, now_ms: u64) -> Result<Option<Press>, P::Error> {
        let raw = self.pin.is_high()?;
        if raw == self.pressed {
            self.changing = None;
        } else {
            match self.changing {
                Some((level, since)) if level == raw => {
                    if now_ms.saturating_sub(since) >= DEBOUNCE_MS {
                        self.pressed = raw;
                        self.changing = None;
                        if raw {
                            self.down = Some((since, false));
                        } else if let Some((_, fired)) = self.down.take() {
                            if !fired {
                                return Ok(Some(Press::Short));
                            }
                        }
                    }
                }
                _ => self.changing = Some((raw, now_ms)),
            }
        }
        if let Some((since, false)) = self.down {
            if self.pressed && now_ms.saturating_sub(since) >= LONG_PRESS_MS {
                self.down = Some((since, true));
                return Ok(Some(Press::Long));
            }
        }
        Ok(None)
    }

    pub fn release(self) -> P {
        self.pin
    }
}

/// An LED and a button, either of which may be absent. A pin that fails is logged once and
/// left alone from then on; the rest of the panel goes on.
pub struct Panel<L, B> {
    pub led: Option<Led<L>>,
    pub button: Option<Button<B>>,
}

impl<L: OutputPin, B: InputPin> Panel<L, B> {
    /// One tick: the LED shows `state`, the button is sampled.
    pub fn step(&mut self, state: State, now_ms: u64) -> Option<Press> {
        if let Some(led) = &mut self.led {
            if let Err(e) = led.show(state, now_ms) {
                tracing::warn!("status LED: {e:?}; giving up on it");
                self.led = None;
            }
        }
        match self.button.as_mut().map(|b| b.poll(now_ms)) {
            Some(Ok(press)) => press,
            Some(Err(e)) => {
                tracing::warn!("rescan button: {e:?}; giving up on it");
                self.button = None;
                None
            }
            None => None,
        }
    }

    /// Turns the LED off (the process is leaving).
    pub fn off(&mut self) {
        if let Some(led) = &mut self.led {
            let _ = led.show(State::Idle, 0);
        }
    }
}

/// The running panel thread; dropping it turns the LED off and stops the thread.
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the configured pins and runs the panel: the LED follows `indicator`, presses go to
/// `on_press`. None when no pin is configured or the box has no usable GPIO (logged).
pub fn start(
    config: &BoardSection,
    indicator: Indicator,
    on_press: impl FnMut(Press) + Send + 'static,
) -> Option<Running> {
    if config.led_pin.is_none() && config.button_pin.is_none() {
        return None;
    }
    let panel = match gpio::open(config) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!("no status LED or button: {e:#}");
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("board".into())
        .spawn(move || run(panel, &indicator, on_press, &stopping))
        .map_err(|e| tracing::warn!("no board thread: {e}"))
        .ok()?;
    Some(Running {
        stop,
        thread: Some(thread),
    })
}

fn run<L: OutputPin, B: InputPin>(
    mut panel: Panel<L, B>,
    indicator: &Indicator,
    mut on_press: impl FnMut(Press),
    stop: &AtomicBool,
) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now_ms = started.elapsed().as_millis() as u64;
        if let Some(press) = panel.step(indicator.get(), now_ms) {
            tracing::info!("button: {press:?} press");
            on_press(press);
        }
        std::thread::sleep(TICK);
    }
    panel.off();
}

/// The real pins: the kernel's GPIO character device (`/dev/gpiochipN`).
mod gpio {
    use anyhow::{Context, Result, anyhow};
    use linux_embedded_hal::CdevPin;
    use linux_embedded_hal::gpio_cdev::{self, Chip, LineRequestFlags};

    use super::{Button, Led, Panel};
    use crate::config::BoardSection;

    const CONSUMER: &str = "playlista";

    pub fn open(config: &BoardSection) -> Result<Panel<CdevPin, CdevPin>> {
        let mut chip = find_chip(config.gpio_chip.as_deref())?;
        let mut request = |offset: u32, output: bool, active_low: bool| -> Result<CdevPin> {
            let mut flags = if output {
                LineRequestFlags::OUTPUT
            } else {
                LineRequestFlags::INPUT
            };
            if active_low {
                flags |= LineRequestFlags::ACTIVE_LOW;
            }
            let line = chip
                .get_line(offset)
                .with_context(|| format!("{}: no line {offset}", chip.path().display()))?;
            let handle = line
                .request(flags, 0, CONSUMER)
                .with_context(|| format!("{}: line {offset} busy", chip.path().display()))?;
            Ok(CdevPin::new(handle)?)
        };
        let led = match config.led_pin {
            Some(pin) => Some(Led::new(request(pin, true, config.led_active_low)?)),
            None => None,
        };
        let button = match config.button_pin {
            Some(pin) => Some(Button::new(request(pin, false, config.button_active_low)?)),
            None => None,
        };
        tracing::info!(
            "board: LED on {:?}, button on {:?} ({})",
            config.led_pin,
            config.button_pin,
            chip.path().display()
        );
        Ok(Panel { led, button })
    }

    /// `name` is a path (`/dev/gpiochip0`) or a chip label (`pinctrl-bcm2711`, which survives
    /// renumbering between kernels); none: the first chip.
    fn find_chip(name: Option<&str>) -> Result<Chip> {
        if let Some(path) = name.filter(|n| n.starts_with('/')) {
            return Chip::new(path).with_context(|| format!("cannot open {path}"));
        }
        let chips = gpio_cdev::chips().context("no GPIO character devices (/dev/gpiochip*)")?;
        for chip in chips.flatten() {
            if name.is_none_or(|label| chip.label() == label) {
                return Ok(chip);
            }
        }
        Err(match name {
            Some(label) => anyhow!("no GPIO chip labelled {label:?}"),
            None => anyhow!("no GPIO chip"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::MockError;
    use embedded_hal_mock::eh1::digital::{Mock, State as Level, Transaction as T};

    #[test]
    fn the_led_shows_each_state_and_writes_only_changes() {
        // Serving: on once, then nothing to write. Analysing: 500 ms on, 500 off. Error:
        // 100 ms halves. Idle: off.
        let mut led = Led::new(Mock::new(&[
            T::set(Level::High),
            T::set(Level::Low),
            T::set(Level::High),
            T::set(Level::Low),
            T::set(Level::High),
            T::set(Level::Low),
        ]));
        for t in [0, 10, 900] {
            led.show(State::Serving, t).unwrap();
        }
        led.show(State::Analysing, 500).unwrap(); // off half
        led.show(State::Analysing, 990).unwrap();
        led.show(State::Analysing, 1000).unwrap(); // on again
        led.show(State::Error, 1100).unwrap(); // fast: 1100/100 = 11, odd: off
        led.show(State::Error, 1150).unwrap();
        led.show(State::Error, 1200).unwrap(); // on
        led.show(State::Idle, 1210).unwrap();
        led.show(State::Idle, 5000).unwrap();
        led.release().done();
    }

    #[test]
    fn blink_rates_are_slow_for_analysing_and_fast_for_errors() {
        let toggles = |s: State| (1..2000).filter(|&t| s.lit(t) != s.lit(t - 1)).count();
        assert_eq!(toggles(State::Analysing), 3); // 1 Hz
        assert_eq!(toggles(State::Error), 19); // 5 Hz
        assert_eq!(toggles(State::Serving), 0);
        assert_eq!(toggles(State::Idle), 0);
        assert!(State::Serving.lit(123) && !State::Idle.lit(123));
    }

    /// Feeds a button one raw level per 10 ms tick and collects what it reports.
    fn presses(levels: &[bool]) -> Vec<(u64, Press)> {
        let script: Vec<T> = levels
            .iter()
            .map(|&h| T::get(if h { Level::High } else { Level::Low }))
            .collect();
        let mut button = Button::new(Mock::new(&script));
        let mut out = Vec::new();
        for i in 0..levels.len() as u64 {
            if let Some(p) = button.poll(i * 10).unwrap() {
                out.push((i * 10, p));
            }
        }
        button.release().done();
        out
    }

    fn held(ms: usize) -> Vec<bool> {
        let mut v = vec![false; 5];
        v.extend(vec![true; ms / 10]);
        v.extend(vec![false; 10]);
        v
    }

    #[test]
    fn a_short_press_fires_once_on_release() {
        let got = presses(&held(200));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, Press::Short);
        // Released at 250 ms; debounced 30 ms later.
        assert_eq!(got[0].0, 280);
    }

    #[test]
    fn a_long_press_fires_while_held_and_not_again_on_release() {
        let got = presses(&held(2500));
        assert_eq!(got, vec![(2050, Press::Long)]);
    }

    #[test]
    fn contact_bounce_and_glitches_are_ignored() {
        // A 20 ms spike is noise.
        let mut spike = vec![false; 5];
        spike.extend([true, true, false, false, false, false, false]);
        assert!(presses(&spike).is_empty());
        // A press that chatters for its first and last 20 ms is still one short press.
        let mut bouncy = vec![false; 3];
        bouncy.extend([true, false, true, false]);
        bouncy.extend(vec![true; 30]);
        bouncy.extend([false, true, false, true]);
        bouncy.extend(vec![false; 10]);
        let got = presses(&bouncy);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, Press::Short);
    }

    #[test]
    fn a_failing_pin_is_dropped_and_the_rest_goes_on() {
        let err = MockError::Io(std::io::ErrorKind::Other);
        let led = Mock::new(&[T::set(Level::High).with_error(err)]);
        let mut led_written = led.clone();
        let mut script = vec![T::get(Level::Low); 3];
        script.extend(vec![T::get(Level::High); 5]);
        script.extend(vec![T::get(Level::Low); 5]);
        let button = Mock::new(&script);
        let mut panel = Panel {
            led: Some(Led::new(led)),
            button: Some(Button::new(button)),
        };
        let mut got = Vec::new();
        for i in 0..13u64 {
            got.extend(panel.step(State::Serving, i * 10));
        }
        assert!(panel.led.is_none(), "the failed LED is left alone");
        led_written.done();
        assert_eq!(got, vec![Press::Short]);
        panel.button.take().unwrap().release().done();
    }

    #[test]
    fn every_board_profile_is_a_valid_config() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board/profiles");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let c = crate::config::resolve(&crate::config::Flags::default(), Some(&path))
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(c.board.profile.as_deref(), Some(name.as_str()));
            assert!(c.board.memory_max.is_some(), "{name}: no memory_max");
            assert!(
                c.library.is_empty(),
                "{name}: the library is the user's to set"
            );
            assert_eq!(c.cache_dir, std::path::Path::new("/var/lib/playlista"));
            if name.starts_with("rpi") {
                assert_eq!((c.board.led_pin, c.board.button_pin), (Some(17), Some(27)));
                assert!(c.board.button_active_low);
            }
            names.push(name);
        }
        names.sort();
        assert_eq!(
            names,
            ["generic-arm-1gb", "rpi3", "rpi4", "rpi5", "x86-nas"],
            "one profile per board"
        );
    }

    #[test]
    fn no_pins_no_panel() {
        let none = start(&BoardSection::default(), Indicator::default(), |_| {});
        assert!(none.is_none());
        // Pins on a chip this machine lacks: still no error, just no panel.
        let missing = BoardSection {
            gpio_chip: Some("/dev/gpiochip-playlista-test-absent".into()),
            led_pin: Some(17),
            button_pin: Some(27),
            ..BoardSection::default()
        };
        assert!(start(&missing, Indicator::default(), |_| {}).is_none());
        let i = Indicator::new(State::Analysing);
        i.clone().set(State::Error);
        assert_eq!(i.get(), State::Error);
    }
}
