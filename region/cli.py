"""``narhub region ...``: the region side: a pilot CA, the broker config, the receiver."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer

from common.cli import EXIT_FAILED, JsonFlag, emit, refused
from drivers.mqtt import MqttLink, TlsFiles
from region.broker_config import BrokerTls, acl_text, mosquitto_conf
from region.ca import RegionCa, RegionCaError
from region.cli_ingest import ingest
from region.consent_cli import consent_app, consent_record
from region.consents import SqliteConsentRegistry
from region.enrolment_cli import register as register_enrolment
from region.findings.cli import register as register_findings
from region.receiver import RECEIVER_NAME
from region.state import RegionStateError, is_postgres

app = typer.Typer(
    help="The region: pilot CA, broker configuration, reference receiver, enrolments."
)
ca_app = typer.Typer(help="A small region CA for pilots and tests.")
app.add_typer(ca_app, name="ca")
register_enrolment(app)
app.command("ingest")(ingest)
register_findings(app)
app.add_typer(consent_app, name="consent")

CaDir = Annotated[Path, typer.Option("--dir", help="The CA directory.")]


@ca_app.command("init")
def ca_init(
    directory: CaDir,
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "narhub region CA",
    force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the CA key (0600), certificate and an empty CRL."""
    try:
        ca = RegionCa.init(directory, name, force=force)
    except RegionCaError as exc:
        raise refused(exc, as_json) from None
    emit({"ok": True, "ca_cert": str(ca.cert_file), "crl": str(ca.crl_file)}, as_json)


@ca_app.command("sign")
def ca_sign(
    csr: Path,
    directory: CaDir,
    out: Annotated[Path, typer.Option(help="Where to write the certificate.")],
    server_name: Annotated[
        list[str] | None, typer.Option(help="Issue a broker (server) certificate for NAME.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign a hub's (or receiver's, or broker's) CSR; the hub id is the subject CN."""
    try:
        cert = RegionCa(directory).sign(csr.read_bytes(), server_names=tuple(server_name or ()))
    except OSError as exc:
        emit({"ok": False, "error": f"cannot read {csr}: {exc.strerror}"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    except RegionCaError as exc:
        raise refused(exc, as_json) from None
    out.write_bytes(cert)
    emit({"ok": True, "cert": str(out)}, as_json)


@ca_app.command("revoke")
def ca_revoke(cert: Path, directory: CaDir, as_json: JsonFlag = False) -> None:
    """Revoke a certificate and rewrite the CRL (restart or reload the broker to apply)."""
    try:
        serial = RegionCa(directory).revoke(cert.read_bytes())
    except RegionCaError as exc:
        raise refused(exc, as_json) from None
    emit({"ok": True, "serial": f"{serial:x}", "crl": str(RegionCa(directory).crl_file)}, as_json)


@app.command("broker-config")
def broker_config(
    ca_dir: Annotated[Path, typer.Option(help="The region CA directory.")],
    cert: Annotated[Path, typer.Option(help="The broker's certificate.")],
    key: Annotated[Path, typer.Option(help="The broker's key.")],
    out_dir: Annotated[Path, typer.Option(help="Where to write mosquitto.conf and acl.")],
    port: int = 8883,
    bind: str = "0.0.0.0",  # noqa: S104 - a broker listens on the network by design
    persistence: Annotated[Path | None, typer.Option(help="Persistence directory.")] = None,
    receiver: Annotated[
        list[str] | None,
        typer.Option(help="Certificate CN of a receiver allowed to read every hub (repeat)."),
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            help="Another recipient on this broker (repeat): its own topic tree "
            "narhub/v1/r/NAME, read only by CN NAME-receiver (docs/consent.md)."
        ),
    ] = None,
    identity_plugin: Annotated[
        Path | None,
        typer.Option(
            help="A built narhub_identity plugin (default: build it into --out-dir with cc)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a Mosquitto configuration: TLS 1.3, client certificates bound to their client
    ids (the identity plugin), CRL, per-hub ACL."""
    from region.broker_plugin import PluginBuildError, build_identity_plugin, plugin_options

    ca = RegionCa(ca_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        plugin = identity_plugin or build_identity_plugin(out_dir)
    except PluginBuildError as exc:
        raise refused(exc, as_json) from None
    acl = out_dir / "acl"
    acl.write_text(acl_text(tuple(receiver or [RECEIVER_NAME]), recipients=tuple(recipient or [])))
    tls = BrokerTls(ca.cert_file, cert, key, ca.crl_file if ca.crl_file.exists() else None)
    conf = out_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto_conf(
            port=port,
            bind=bind,
            tls=tls,
            acl_file=acl,
            persistence_dir=persistence,
            identity_plugin=plugin.resolve(),
            plugin_options=plugin_options(tuple(recipient or [])),
        )
    )
    emit({"ok": True, "config": str(conf), "acl": str(acl), "plugin": str(plugin)}, as_json)


smart_app = typer.Typer(help="SMART Backend Services client key for the FHIR server.")
app.add_typer(smart_app, name="smart-key")


@smart_app.command("init")
def smart_key_init(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the client files.")],
    client_id: Annotated[str, typer.Option(help="The client id the FHIR server registered.")],
    alg: Annotated[str, typer.Option(help="ES384 or RS384.")] = "ES384",
    kid: Annotated[str, typer.Option(help="The key id in the JWK Set.")] = "narhub-region-1",
    token_url: Annotated[
        str | None, typer.Option(help="The token endpoint (default: from smart-configuration).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the client key (0600), client.toml (for ingest --smart) and jwks.json (the
    public JWK Set to register with the FHIR server's authorization server)."""
    from region.smart_auth import SmartClient, SmartClientError, new_client_key

    key_file = directory / "client.key"
    if key_file.exists() and not force:
        emit(
            {"ok": False, "error": f"{key_file} exists", "hint": "use it, or pass --force"}, as_json
        )
        raise typer.Exit(EXIT_FAILED)
    try:
        key_pem = new_client_key(alg)
        client = SmartClient(client_id, key_pem, alg, kid, token_url=token_url)
    except SmartClientError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    directory.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps(client.public_jwks(), indent=2) + "\n")
    toml = directory / "client.toml"
    lines = [
        f"client_id = {json.dumps(client_id)}",
        'key_file = "client.key"',
        f"alg = {json.dumps(alg)}",
        f"kid = {json.dumps(kid)}",
        f"scope = {json.dumps(client.scope)}",
        *([f"token_url = {json.dumps(token_url)}"] if token_url else []),
    ]
    toml.write_text("\n".join(lines) + "\n")
    emit({"ok": True, "client": str(toml), "jwks": str(jwks)}, as_json)


@app.command("export")
def export(
    state: Annotated[str, typer.Option(help="The receivers' postgresql:// state URL.")],
    out: Annotated[Path, typer.Option(help="Where to write the Observations (NDJSON).")],
    as_json: JsonFlag = False,
) -> None:
    """Write every Observation of a PostgreSQL state as NDJSON (FHIR bulk-data style)."""
    if not is_postgres(state):
        emit(
            {"ok": False, "error": "a SQLite state writes its NDJSON file (--out) itself"}, as_json
        )
        raise typer.Exit(EXIT_FAILED)
    from region.state_pg import export_ndjson

    try:
        count = export_ndjson(state, out)
    except RegionStateError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    emit({"ok": True, "observations": count, "out": str(out)}, as_json)


# -- remote management: the command key and `narhub region send ...` ---------------------------

command_key_app = typer.Typer(help="The region's command-signing key (remote management).")
app.add_typer(command_key_app, name="command-key")
send_app = typer.Typer(
    help="Send a signed command to a hub and wait for its result (docs/remote-management.md)."
)
app.add_typer(send_app, name="send")

KeyDir = Annotated[Path, typer.Option("--key-dir", help="The command-key directory.")]
SendCaDir = Annotated[
    Path, typer.Option("--ca-dir", help="The region CA directory (trust; signs renewals).")
]
SendHost = Annotated[str, typer.Option("--host", help="The broker host.")]
SendPort = Annotated[int, typer.Option("--port", help="The broker port.")]
OperatorCert = Annotated[
    Path, typer.Option("--cert", help="The operator certificate (CN region-operator).")
]
OperatorKey = Annotated[Path, typer.Option("--key", help="The operator key.")]
ExpiresIn = Annotated[
    float, typer.Option("--expires-in", help="Seconds until the hub must refuse the command.")
]
ResultTimeout = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the hub's result.")
]


@command_key_app.command("init")
def command_key_init(
    directory: Annotated[Path, typer.Option("--dir", help="The command-key directory.")],
    kid: Annotated[str, typer.Option(help="The key id hubs pin it under.")] = "region-cmd-1",
    force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the command key (0600); give command.pem and the kid to every hub's [remote]."""
    from region.command_sender import RegionCommandKey, SendError

    try:
        key = RegionCommandKey.init(directory, kid=kid, force=force)
    except SendError as exc:
        raise refused(exc, as_json) from None
    emit({"ok": True, "kid": key.kid, "public_key": str(key.public_file)}, as_json)


@dataclass(frozen=True)
class _Channel:
    """The key, trust and broker a ``send`` command uses: the options every one of them takes
    (:func:`_send_command` gives them to the command line)."""

    key_dir: KeyDir
    ca_dir: SendCaDir
    host: SendHost
    cert: OperatorCert
    key: OperatorKey
    port: SendPort = 8883
    expires_in_s: ExpiresIn = 900.0
    timeout_s: ResultTimeout = 30.0

    def send(self, hub_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Sign, publish, wait; the result as a dict (raises SendError)."""
        from region.command_sender import RegionCommandKey, operator_client_id, send_and_wait

        command, message = RegionCommandKey(self.key_dir).build(
            hub_id, kind, body, expires_in_s=self.expires_in_s
        )
        tls = TlsFiles(RegionCa(self.ca_dir).cert_file, self.cert, self.key)

        def connect() -> MqttLink:
            return MqttLink(self.host, self.port, client_id=operator_client_id(), tls=tls)

        result = asyncio.run(
            send_and_wait(connect, hub_id, kind, message, timeout_s=self.timeout_s)
        )
        return {"seq": command.seq, **json.loads(result.to_json())}


_Command = Callable[..., None]


def _send_command(name: str, *, timeout_s: float | None = None) -> Callable[[_Command], _Command]:
    """Register ``send NAME`` for a function that takes a ``channel`` and an ``as_json``: on
    the command line ``channel`` is the :class:`_Channel` options, the required ones in its
    place and the others just before --json (``timeout_s``: this command's --timeout default,
    else :class:`_Channel`'s). A function without either parameter is a ``TypeError`` at
    registration, not a command that fails when run."""

    def register(function: _Command) -> _Command:
        signature = inspect.signature(function, eval_str=True)
        missing = {"channel", "as_json"} - set(signature.parameters)
        if missing:
            raise TypeError(f"send {name}: {function.__name__} lacks {sorted(missing)}")
        hints = get_type_hints(_Channel, include_extras=True)
        defaults = {} if timeout_s is None else {"timeout_s": timeout_s}
        required: list[inspect.Parameter] = []
        optional: list[inspect.Parameter] = []
        for f in fields(_Channel):
            default = defaults.get(f.name, f.default)
            param = inspect.Parameter(
                f.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if default is MISSING else default,
                annotation=hints[f.name],
            )
            (required if default is MISSING else optional).append(param)
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.name == "channel":
                params += required
                continue
            if param.name == "as_json":
                params += optional
            params.append(param)

        @functools.wraps(function)
        def command(**options: Any) -> None:
            shared = {f.name: options.pop(f.name) for f in fields(_Channel)}
            function(channel=_Channel(**shared), **options)

        # typer reads a command's options from its signature (inspect.signature honours this)
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        send_app.command(name)(command)
        return function

    return register


def _finish(results: list[dict[str, Any]], as_json: bool) -> None:
    ok = bool(results) and all(r.get("status") == "applied" for r in results)
    emit({"ok": ok, "results": results}, as_json)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _send_failed(exc: Exception, as_json: bool, results: list[dict[str, Any]]) -> typer.Exit:
    reason = getattr(exc, "reason", str(exc))
    hint = getattr(exc, "hint", "")
    emit({"ok": False, "error": reason, "hint": hint, "results": results}, as_json)
    return typer.Exit(EXIT_FAILED)


def _send_one(
    channel: _Channel, hub_id: str, kind: str, body: dict[str, Any], as_json: bool
) -> None:
    """Send one command and report its result (exit code failed unless applied)."""
    from region.command_sender import SendError

    try:
        result = channel.send(hub_id, kind, body)
    except (SendError, RegionCaError) as exc:
        raise _send_failed(exc, as_json, []) from None
    _finish([result], as_json)


@_send_command("config")
def send_config(
    hub_id: str,
    channel: _Channel,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="TOML with the tables to change: \\[pipeline] thresholds, \\[batching], "
            "\\[ble] devices, \\[sensors] boards.",
        ),
    ] = None,
    rollback: Annotated[bool, typer.Option(help="Go back to the previous configuration.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Update a hub's configuration (validated by the hub; the previous one kept for rollback)."""

    if (file is None) == (not rollback):
        emit({"ok": False, "error": "give --file or --rollback (one of them)"}, as_json)
        raise typer.Exit(2)
    body: dict[str, Any] = {"rollback": True}
    if file is not None:
        try:
            body = {"set": tomllib.loads(file.read_text(encoding="utf-8"))}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            emit({"ok": False, "error": f"cannot read {file}: {exc}"}, as_json)
            raise typer.Exit(EXIT_FAILED) from None
    _send_one(channel, hub_id, "config", body, as_json)


@_send_command("consent")
def send_consent(
    hub_id: str,
    action: Annotated[str, typer.Argument(help="grant or withdraw.")],
    categories: Annotated[list[str], typer.Argument(help="Data categories (docs/consent.md).")],
    channel: _Channel,
    recipient: Annotated[str, typer.Option(help="The recipient this key belongs to.")],
    by: Annotated[str, typer.Option("--by", help="Who recorded the consent.")],
    basis: Annotated[str, typer.Option(help="patient-consent, representative-consent, ...")] = (
        "patient-consent"
    ),
    state: Annotated[
        Path | None,
        typer.Option(help="Also record it in this receiver's consents (`region consent`)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a consent record to a hub, signed by this recipient's command key (the hub
    accepts it only from the key of the recipient it names); with --state the receiver's own
    copy is recorded too (checked on both sides, docs/consent.md)."""
    record = consent_record(action, recipient, categories, by, basis, None, as_json)
    if state is not None:
        registry = SqliteConsentRegistry(state, recipient)
        try:
            registry.add(hub_id, record)
        finally:
            registry.close()
    _send_one(channel, hub_id, "consent", record.to_map(), as_json)


@_send_command("renew")
def send_renew(
    hub_id: str,
    channel: _Channel,
    as_json: JsonFlag = False,
) -> None:
    """Renew a hub's certificate: the hub makes a new key and CSR, the region CA (--ca-dir)
    signs it, the hub installs it after proving it on a TLS connection; the old one is kept."""
    from common.pki import certificate_common_name
    from region.command_sender import SendError

    results: list[dict[str, Any]] = []
    try:
        results.append(channel.send(hub_id, "renew-cert", {"step": "csr"}))
        csr = results[-1].get("data", {}).get("csr") if results[-1]["status"] == "applied" else None
        if csr is None:
            _finish(results, as_json)
            return
        cert_pem = RegionCa(channel.ca_dir).sign(str(csr).encode())
        if certificate_common_name(cert_pem) != hub_id:
            emit({"ok": False, "error": "the CSR names another hub", "results": results}, as_json)
            raise typer.Exit(EXIT_FAILED)
        results.append(
            channel.send(
                hub_id, "renew-cert", {"step": "install", "certificate": cert_pem.decode()}
            )
        )
    except (SendError, RegionCaError) as exc:
        raise _send_failed(exc, as_json, results) from None
    _finish(results, as_json)


@_send_command("firmware", timeout_s=300.0)
def send_firmware(
    hub_id: str,
    channel: _Channel,
    board: Annotated[str, typer.Option(help="The board type: rp2040, esp32 or sim.")],
    firmware_dir: Annotated[
        Path | None, typer.Option(help="The firmware tree (default: narhub's firmware/).")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(help="The version the boards must report (default: sensorfw VERSION)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Update the sensor-board firmware of one board type: a signed bundle, deployed board by
    board; a board that does not come back with the version is rolled back."""
    from common.firmware_bundle import FIRMWARE_DIR, BundleError, firmware_files, firmware_version
    from region.command_sender import RegionCommandKey, SendError
    from region.firmware_bundle import build_bundle

    try:
        files = firmware_files(firmware_dir or FIRMWARE_DIR, board)
        command_key = RegionCommandKey(channel.key_dir)
        signing_key = command_key.key_file.read_bytes()
        version = version or firmware_version(files)
        body = build_bundle(files, board, version, command_key.kid, signing_key)
    except (BundleError, SendError, OSError) as exc:
        raise _send_failed(exc, as_json, []) from None
    _send_one(channel, hub_id, "firmware", body, as_json)


def register(root: typer.Typer) -> None:
    """Mount ``narhub region`` (entry point ``narhub.commands``: region)."""
    root.add_typer(app, name="region")
