"""The hub configuration (TOML), validated so that every error names the key that is wrong."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: A configuration model (:func:`validated`).
_Model = TypeVar("_Model", bound=BaseModel)


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; ``problems`` lists key: message."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors (a typo in a TOML key is reported, not ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(StrictModel):
    """A paired BLE device: its address and what it is."""

    address: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    kind: Literal[
        "thermometer",
        "blood_pressure",
        "scale",
        "pulse_oximeter",
        "glucose",
        "heart_rate",
        "cgm",
        "ghs",
        "enhanced_blood_pressure",
        "body_composition",
    ]
    bond: bool = False
    #: The quirk profile ``narhub ble pair`` saw chosen (protocols/gatt/quirks.py) and why:
    #: shown by ``narhub devices list``. The running hub chooses again from what the device
    #: says in each session; these are the technician's record.
    profile: str | None = None
    profile_reason: str | None = None
    #: On a device shared by several people (a cuff or scale with user slots): the patient's
    #: user index (BLS 1.0 User ID, 0-254). Readings of other slots are not forwarded.
    user_index: int | None = Field(default=None, ge=0, le=254)


class BleConfig(StrictModel):
    """BLE: which backend, which devices are allowlisted, and how the central behaves."""

    backend: Literal["bluez", "sim"] = "bluez"
    devices: list[DeviceConfig] = []
    max_connections: int = Field(default=3, ge=1, le=10)
    scanning_mode: Literal["active", "passive"] = "passive"
    clock_max_offset_s: float = Field(default=60.0, gt=0, le=86_400)
    idle_disconnect_s: float = Field(default=2.0, gt=0, le=600)
    #: With ``backend = "sim"``: a bumble HCI transport to the virtual rig's radio
    #: (``tcp-client:127.0.0.1:PORT``, printed by ``narhub rig``); unset: an in-process radio.
    sim_transport: str | None = Field(default=None, pattern=r"^(tcp-client|unix|pty|serial):.+")


class BoardConfig(StrictModel):
    """A MicroPython sensor board: ``serial:/dev/ttyACM0`` or ``serial:usb:SERIALNUMBER``."""

    port: str = Field(pattern=r"^serial:.+")
    #: The board type (firmware updates go to boards of one type, docs/remote-management.md);
    #: unset: detected from the USB VID/PID.
    board: Literal["rp2040", "esp32", "sim"] | None = None
    #: Sampling interval per sensor kind, seconds (0.01 s to 1 day), sent to the board as its
    #: CONFIG at every connection and boot (docs/protocols/sensor-link.md section 3.6);
    #: ``air-temperature`` also paces relative humidity. Unset kinds keep the firmware's
    #: defaults (60 s climate and motion, 10 s door and pressure pad).
    intervals_s: dict[
        Literal["air-temperature", "motion-events", "door-open", "pressure-pad-load"],
        Annotated[float, Field(ge=0.01, le=86_400)],
    ] = {}


class SensorsConfig(StrictModel):
    """The sensor boards attached over USB serial."""

    boards: list[BoardConfig] = []


class UplinkConfig(StrictModel):
    """The region broker and this hub's TLS identity."""

    host: str
    port: int = Field(default=8883, ge=1, le=65535)
    ca_file: Path
    cert_file: Path
    key_file: Path
    tls_min_version: Literal["1.2", "1.3"] = "1.3"
    #: Batches published and awaiting their PUBACK at once (docs/protocols/uplink.md).
    max_inflight: int = Field(default=8, ge=1, le=64)
    #: Superseded by ``[batching]`` (per-priority deadlines); accepted so that existing
    #: configuration files stay valid, and no longer used.
    batch_window_s: float = Field(default=1.0, gt=0, le=300)


#: The name the single ``[uplink]`` of older configurations gets as a recipient.
DEFAULT_RECIPIENT = "region"
#: The topic prefix of the ``region`` recipient: today's tree (``narhub/v1/{hub}/up/...``).
DEFAULT_TOPIC_PREFIX = "narhub/v1"


class RecipientConfig(UplinkConfig):
    """A care organisation the hub forwards to (docs/consent.md): its own broker, pinned CA,
    client certificate and topic tree. What it may receive is consent, not configuration.

    ``topic_prefix``: the root of this recipient's topics (its batches go to
    ``{topic_prefix}/{hub}/up/{priority}``); unset: ``narhub/v1`` for ``region`` (today's
    tree) and ``narhub/v1/r/{name}`` for any other, so that one broker can keep the trees apart
    with ACLs (region/broker_config.py).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")
    #: The kids of ``[remote] command_keys`` that belong to this recipient: a ``consent``
    #: command naming this recipient is accepted only when one of them signed it. A kid no
    #: recipient claims belongs to the home recipient (the region's command key).
    command_kids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = []
    topic_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    #: What may wait for this recipient alone, MiB (readings it has not taken, its unsent
    #: batches); beyond it its oldest environmental and telemetry readings are evicted for it
    #: alone, with its own tombstone (docs/pipeline.md, "Recipients"). Unset: only
    #: ``[store] quota_mib`` applies, to everyone.
    quota_mib: float | None = Field(default=None, gt=0, le=1_000_000)

    def topics_root(self) -> str:
        """The topic prefix in use (the explicit one, else the default for the name)."""
        if self.topic_prefix is not None:
            return self.topic_prefix
        if self.name == DEFAULT_RECIPIENT:
            return DEFAULT_TOPIC_PREFIX
        return f"{DEFAULT_TOPIC_PREFIX}/r/{self.name}"


class StoreConfig(StrictModel):
    """The durable outbox (docs/pipeline.md): group commit, disk quota, idempotency keys."""

    #: The longest a reading waits in memory for the commit that stores it (and so for the
    #: acknowledgement to its source); commits within the window share one sync.
    commit_window_s: float = Field(default=1.0, ge=0, le=10)
    #: The same for readings no source waits for and none can resend: continuous notification
    #: streams (oximetry, heart rate) and the hub's own telemetry. A power cut loses at most
    #: this much of them (the hub is down for the cut itself anyway); a 1 Hz stream committed
    #: every second costs a 4 KiB page per second on the SD card (docs/pipeline.md, "Bytes on
    #: the SD card"). A reading a source waits for, an alert or a spot reading pulls them into
    #: its own commit. null: commit_window_s.
    continuous_commit_window_s: float | None = Field(default=60.0, ge=0, le=300)
    #: Hold the outbox for the hub alone (SQLite ``locking_mode=EXCLUSIVE``): the WAL index
    #: then lives in the hub's memory instead of a ``-shm`` file the kernel writes back to the
    #: SD card every ~30 s (docs/pipeline.md, "Bytes on the SD card"). ``narhub status`` then
    #: reads the queue from the hub's activity file; ``narhub queue`` needs the hub stopped.
    exclusive: bool = True
    #: Readings waiting for a commit, at most; a source that would pass it waits (backpressure).
    max_pending_readings: int = Field(default=100_000, ge=100, le=10_000_000)
    #: Disk space the outbox may use; beyond it the lowest priority, oldest readings are evicted.
    #: Fractions allowed (the virtual rig's nearly full disk: 0.03125 = 32 KiB).
    quota_mib: float = Field(default=1024, ge=0.03125, le=1_048_576)
    #: Free space always left on the file system (the quota shrinks to keep it).
    min_free_mib: int = Field(default=64, ge=0, le=65_536)
    #: How long a source's idempotency key is remembered (a resend within it is stored once).
    dedup_retention_days: float = Field(default=30, gt=0, le=3650)


class BatchingConfig(StrictModel):
    """How long readings may wait before a batch leaves (wire format v2, docs/pipeline.md).

    A batch is sealed at the earliest deadline among the waiting readings and takes every
    waiting reading; it carries the most urgent priority among them (alerts first).
    """

    alert_s: float = Field(default=0, ge=0, le=3600)
    clinical_s: float = Field(default=10, ge=0, le=3600)
    continuous_s: float = Field(default=300, ge=0, le=3600)
    environmental_s: float = Field(default=300, ge=0, le=86_400)
    telemetry_s: float = Field(default=300, ge=0, le=86_400)
    max_batch_readings: int = Field(default=10_000, ge=1, le=100_000)


class ThresholdConfig(StrictModel):
    """A care team's limit for one code: a value below ``below`` or above ``above`` is an alert."""

    mdc_code: int = Field(ge=0, le=0xFFFFFFFF)
    unit: str = Field(min_length=1, max_length=32)
    below: Decimal | None = None
    above: Decimal | None = None


class ReductionConfig(StrictModel):
    """Lossy reduction for one non-clinical code (environmental or telemetry only).

    ``deadband``: forward a value only when it moved at least this much, or ``heartbeat_s``
    passed. ``window_s``: replace the readings of each window by min, mean, max and count.
    """

    mdc_code: int = Field(ge=0, le=0xFFFFFFFF)
    deadband: Decimal | None = Field(default=None, ge=0)
    heartbeat_s: float = Field(default=900, gt=0, le=86_400)
    window_s: float | None = Field(default=None, gt=0, le=86_400)


class PipelineConfig(StrictModel):
    """The edge pipeline: per-patient thresholds and opt-in reduction of non-clinical data."""

    thresholds: list[ThresholdConfig] = []
    reduction: list[ReductionConfig] = []


class RemoteConfig(StrictModel):
    """Remote management from the region (docs/remote-management.md).

    ``command_keys``: the region's command-signing public keys (PEM files) pinned at
    provisioning, by kid; only commands signed by one of them are executed.
    """

    command_keys: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")], Path] = {}


class ClockConfig(StrictModel):
    """When the hub trusts its wall clock (docs/pipeline.md, "The hub's clock").

    ``require_sync``: readings wait for the kernel to say the clock is NTP-synchronised
    (adjtimex) before they leave with a wall time. Unset: required, except with
    ``ble.backend = "sim"`` (the virtual rig on a development machine or container).
    """

    require_sync: bool | None = None


_CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class LightConfig(StrictModel):
    """The status light: an RGB LED on three GPIO pins (BCM numbers), through gpiozero
    (docs/feedback.md, "The light")."""

    #: gpiozero's pin factory by name: ``auto`` (gpiozero chooses: lgpio, RPi.GPIO, pigpio,
    #: native), ``lgpio``, ``rpigpio``, ``pigpio``, ``native``, or ``mock`` (gpiozero's
    #: MockFactory: no hardware; the virtual rig and benchmarks).
    pin_factory: Literal["auto", "lgpio", "rpigpio", "pigpio", "native", "mock"] = "auto"
    red_pin: int = Field(default=17, ge=0, le=53)
    green_pin: int = Field(default=27, ge=0, le=53)
    blue_pin: int = Field(default=22, ge=0, le=53)
    #: False for a common-anode LED (lit when the pin is low).
    active_high: bool = True
    #: Overall brightness (PWM duty scale); the calm colour is a fraction of it.
    brightness_percent: int = Field(default=100, ge=1, le=100)
    #: With ``pin_factory = "mock"`` only: every colour the pins take is appended here as a
    #: JSON line (the virtual rig reads the patterns from it).
    trace_file: Path | None = None

    @model_validator(mode="after")
    def _pins(self) -> LightConfig:
        pins = (self.red_pin, self.green_pin, self.blue_pin)
        if len(set(pins)) != 3:
            raise ValueError(f"red_pin, green_pin and blue_pin must differ (got {pins})")
        if self.trace_file is not None and self.pin_factory != "mock":
            raise ValueError('trace_file needs pin_factory = "mock" (it records mock pins)')
        return self


class DisplayConfig(StrictModel):
    """The optional small display, drawn with Pillow and driven by luma (``narhub[display]``;
    docs/feedback.md, "The display")."""

    #: luma device by name: SPI LCDs ``st7789`` and ``ili9341`` (luma.lcd), OLEDs ``ssd1306``,
    #: ``sh1106`` and ``ssd1322`` (luma.oled), ``framebuffer`` (an HDMI/DSI screen through
    #: /dev/fb0, luma.core), or ``png`` (each frame written to ``png_file``: development,
    #: the rig, benchmarks).
    driver: Literal["st7789", "ili9341", "ssd1306", "sh1106", "ssd1322", "framebuffer", "png"]
    width: int = Field(default=320, ge=64, le=1920)
    height: int = Field(default=240, ge=32, le=1080)
    rotate: Literal[0, 1, 2, 3] = 0
    spi_port: int = Field(default=0, ge=0, le=6)
    spi_device: int = Field(default=0, ge=0, le=3)
    i2c_port: int = Field(default=1, ge=0, le=20)
    i2c_address: int = Field(default=0x3C, ge=0x03, le=0x77)
    gpio_dc: int = Field(default=24, ge=0, le=53)
    gpio_rst: int = Field(default=25, ge=0, le=53)
    #: A TrueType font with Swedish letters (DejaVu Sans Bold: Debian's fonts-dejavu-core).
    font_file: Path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    #: ``driver = "png"``: where each frame is written.
    png_file: Path | None = None

    @model_validator(mode="after")
    def _png(self) -> DisplayConfig:
        if (self.driver == "png") != (self.png_file is not None):
            raise ValueError('png_file is needed with driver = "png", and only with it')
        return self


class VoiceConfig(StrictModel):
    """Spoken confirmation through espeak-ng (docs/feedback.md, "The voice")."""

    #: An espeak-ng voice (``espeak-ng --voices``); unset: the language's (``sv`` or ``en``).
    voice: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_+/-]{1,40}$")
    volume_percent: int = Field(default=60, ge=0, le=100)
    #: Words per minute (espeak-ng ``-s``); slower is easier to follow.
    words_per_minute: int = Field(default=140, ge=80, le=300)
    #: The program that plays the WAV on stdin (ALSA's aplay by default).
    player: list[str] = ["aplay", "-q"]
    #: Also say "the reading is saved" (always said: that it reached the care centre).
    say_stored: bool = False


class FeedbackConfig(StrictModel):
    """What the patient sees and hears (docs/feedback.md): a light, a display, a voice.

    Status only, never a judgement of a value. Every output is optional; the hub runs the
    same when one is missing or fails.
    """

    language: Literal["sv", "en"] = "sv"
    #: Local clock times between which nothing is lit or said; the same time twice: no quiet
    #: hours.
    quiet_from: str = Field(default="22:00", pattern=_CLOCK_TIME)
    quiet_until: str = Field(default="07:00", pattern=_CLOCK_TIME)
    #: A device with no reading for this long needs a look.
    device_silent_s: float = Field(default=36 * 3600, ge=1, le=30 * 86_400)
    #: No connection to the region for this long needs a look (readings are kept).
    uplink_outage_s: float = Field(default=3 * 3600, ge=1, le=30 * 86_400)
    #: The hub's clock not trusted for this long needs a look (readings are held).
    clock_untrusted_s: float = Field(default=3600, ge=1, le=30 * 86_400)
    #: A device battery at or below this needs a look.
    battery_low_percent: int = Field(default=15, ge=1, le=90)
    #: A button (GPIO, to ground) that shows the status on demand, also in quiet hours.
    button_pin: int | None = Field(default=None, ge=0, le=53)
    #: How long the status is shown after the button.
    show_s: float = Field(default=10, ge=1, le=300)
    light: LightConfig | None = None
    display: DisplayConfig | None = None
    voice: VoiceConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackConfig:
        light = self.light
        if (
            light is not None
            and self.button_pin is not None
            and self.button_pin in (light.red_pin, light.green_pin, light.blue_pin)
        ):
            raise ValueError(f"button_pin {self.button_pin} is one of the light's pins")
        return self


class HubConfig(StrictModel):
    """The whole hub configuration."""

    hub_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")
    data_dir: Path
    #: The only patient identity that leaves the home: a pseudonym issued by the care team.
    patient_pseudonym: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    ble: BleConfig = BleConfig()
    sensors: SensorsConfig = SensorsConfig()
    #: The home recipient: its key signs the batches and its broker carries the remote
    #: commands. Unset with ``[[recipients]]``: the recipient ``region``, else the first.
    uplink: UplinkConfig
    #: Every recipient (docs/consent.md); unset: the ``[uplink]`` alone, named ``region``.
    recipients: list[RecipientConfig] = []
    store: StoreConfig = StoreConfig()
    batching: BatchingConfig = BatchingConfig()
    pipeline: PipelineConfig = PipelineConfig()
    #: Signed commands from the region (unset: the hub takes no remote commands).
    remote: RemoteConfig | None = None
    clock: ClockConfig = ClockConfig()
    #: The light, display and voice for the patient (unset: none).
    feedback: FeedbackConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _uplink_from_recipients(cls, data: object) -> object:
        """``[[recipients]]`` without ``[uplink]``: the home is ``region``, else the first."""
        if not isinstance(data, dict) or "uplink" in data:
            return data
        recipients = data.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return data
        dicts = [r for r in recipients if isinstance(r, dict)]
        home = next((r for r in dicts if r.get("name") == DEFAULT_RECIPIENT), None)
        home = home if home is not None else (dicts[0] if dicts else None)
        if home is None:
            return data
        uplink = {k: v for k, v in home.items() if k in UplinkConfig.model_fields}
        return {**data, "uplink": uplink}

    @model_validator(mode="after")
    def _unique_recipients(self) -> HubConfig:
        names = [r.name for r in self.recipients]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"recipients: names must be unique (twice: {', '.join(twice)})")
        return self

    def home_recipient(self) -> str:
        """The name of the recipient ``[uplink]`` is (the one this hub's uplink serves)."""
        names = [r.name for r in self.recipients]
        if not names or DEFAULT_RECIPIENT in names:
            return DEFAULT_RECIPIENT
        return names[0]

    def home(self) -> RecipientConfig:
        """The home recipient's configuration (its topic tree, for the uplink)."""
        name = self.home_recipient()
        return next(r for r in self.all_recipients() if r.name == name)

    def recipient_of_kid(self, kid: str) -> str:
        """The recipient a command key belongs to (unclaimed: the home recipient)."""
        for recipient in self.recipients:
            if kid in recipient.command_kids:
                return recipient.name
        return self.home_recipient()

    def all_recipients(self) -> list[RecipientConfig]:
        """Every recipient; a configuration with ``[uplink]`` alone has one, ``region``."""
        if self.recipients:
            return list(self.recipients)
        fields = self.uplink.model_dump()
        return [RecipientConfig(name=DEFAULT_RECIPIENT, **fields)]


def validation_problems(exc: ValidationError) -> list[str]:
    """One ``dotted.key[0]: message (got value)`` line per pydantic error."""
    problems = []
    for err in exc.errors():
        key = ""
        for part in err["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        given = err.get("input")
        got = "" if isinstance(given, dict) or err["type"] == "missing" else f" (got {given!r})"
        problems.append(f"{key or '(top level)'}: {err['msg']}{got}")
    return problems


def validated(
    model: type[_Model],
    data: dict[str, object],
    *,
    path: Path,
    error: type[ConfigError] = ConfigError,
) -> _Model:
    """Already-parsed TOML (the file ``path``'s) validated as ``model``; ``error`` lists every
    problem by its dotted key (:func:`validation_problems`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(path, validation_problems(exc)) from None


def read_toml(path: Path, *, error: type[ConfigError] = ConfigError) -> dict[str, object]:
    """The tables of the TOML file ``path``; ``error`` when it cannot be read or is not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(path, [f"cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise error(path, [f"not valid TOML: {exc}"]) from None


def parse_config(data: dict[str, object], *, path: Path) -> HubConfig:
    """Validate already-parsed TOML; errors name the dotted key (``ble.devices[0].address``)."""
    return validated(HubConfig, data, path=path)


def load_config(path: Path) -> HubConfig:
    """Read and validate a TOML configuration file."""
    return parse_config(read_toml(path), path=path)


DEFAULT_CONFIG_PATH = Path("/etc/narhub/narhub.toml")
CONFIG_ENV = "NARHUB_CONFIG"


def resolve_config_path(option: Path | None, environ: dict[str, str]) -> Path:
    """``--config`` wins, then ``$NARHUB_CONFIG``, then ``/etc/narhub/narhub.toml``."""
    if option is not None:
        return option
    from_env = environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render_config(config: HubConfig) -> str:
    """The configuration as TOML (what ``narhub init`` writes); round-trips through load."""
    data = config.model_dump(mode="json", exclude_none=True)
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, body in data.items():
        if not isinstance(body, dict):
            continue
        lines.append(f"\n[{table}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in body.items())
    return "\n".join(lines) + "\n"
