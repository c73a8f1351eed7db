"""AndroidDevice against a simulated device, through Debian's real adb server.

Ground truth comes from ``adb shell dumpsys digiq-sim`` read through the adb CLI (the library
itself never uses it). The minimal world: a counter button, a text field (tap to focus, type,
ENTER submits), "Notes"/"Settings" icons, BACK/HOME.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import adbutils
import numpy as np
import pytest
from PIL import Image

from android.actions import Action
from android.device import AndroidDevice
from android.errors import (
    AdbServerUnreachableError,
    DeviceCommandError,
    DeviceOfflineError,
    DeviceTimeoutError,
    UntypeableTextError,
)
from android.observation import Observation, UIDumpParseError, UIElement, parse_ui_xml

LAUNCHER = "com.google.android.apps.nexuslauncher"
NOTES = ("com.example.notes", "com.example.notes.MainActivity")


def truth(adb_env: Any, serial: str) -> dict[str, Any]:
    return json.loads(adb_env.adb("-s", serial, "shell", "dumpsys", "digiq-sim").stdout)


@pytest.fixture
def device(adb_env: Any, sim_device: adbutils.AdbDevice) -> AndroidDevice:
    return AndroidDevice(sim_device.serial, adb_port=adb_env.port, timeout=20)


def element(device: AndroidDevice, **criteria: Any) -> UIElement:
    elements = device.ui_elements()
    obs = Observation(np.zeros((1, 1, 3), np.uint8), elements, None)
    found = obs.find(**criteria)
    assert found is not None, f"no element matching {criteria}"
    return found


def focus_field(device: AndroidDevice) -> None:
    device.tap(*element(device, resource_id="search_field").center)


# ----------------------------------------------------------------------------- construction


def test_adb_port_defaults_to_environment(adb_env: Any, sim_device: adbutils.AdbDevice) -> None:
    device = AndroidDevice(sim_device.serial)  # adb_env set ANDROID_ADB_SERVER_PORT
    assert device.adb_port == adb_env.port
    assert device.is_alive()
    assert device.state() == "device"


@pytest.mark.parametrize("serial", ["", "emulator 5554", "a\nb"])
def test_bad_serial_is_rejected(serial: str) -> None:
    with pytest.raises(ValueError, match="serial"):
        AndroidDevice(serial, adb_port=5037)


def test_bad_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        AndroidDevice("emulator-5554", adb_port=5037, timeout=0)


# ----------------------------------------------------------------------------- errors


def test_unknown_serial_is_offline(adb_env: Any) -> None:
    ghost = AndroidDevice("emulator-5998", adb_port=adb_env.port, timeout=5)
    with pytest.raises(DeviceOfflineError, match="emulator-5998"):
        ghost.shell(["echo", "hi"])
    assert not ghost.is_alive()


def test_unreachable_adb_server_names_the_address(device: AndroidDevice) -> None:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # bound but not listening: connections are refused
        dead = AndroidDevice(device.serial, adb_port=dead_port, timeout=5)
        with pytest.raises(AdbServerUnreachableError, match=f"127.0.0.1:{dead_port}") as info:
            dead.shell(["echo", "hi"])
    assert info.value.device == device.serial
    assert not dead.is_alive()


def test_timeout_raises_device_timeout(device: AndroidDevice) -> None:
    with pytest.raises(DeviceTimeoutError, match="timed out") as info:
        device.shell("sleep 2", timeout=0.2)
    assert info.value.device == device.serial
    assert info.value.timeout == 0.2
    assert device.is_alive()  # the device is fine afterwards


def test_nonzero_exit_raises_with_stderr(device: AndroidDevice) -> None:
    with pytest.raises(DeviceCommandError, match="No such file") as info:
        device.shell(["ls", "/no/such/dir"])
    assert info.value.exit_code != 0
    assert "No such file" in info.value.stderr
    result = device.shell(["ls", "/no/such/dir"], check=False)
    assert result.exit_code == info.value.exit_code and b"No such file" in result.stderr


def test_list_commands_are_quoted(device: AndroidDevice) -> None:
    nasty = ["$(id)", "`id`", "a;b", "it's", "x y", '"q"', "\\", "&&", "|", "*"]
    result = device.shell(["echo", *nasty])
    assert result.text == " ".join(nasty) + "\n"


def test_pull_reads_device_files(adb_env: Any, device: AndroidDevice, tmp_path: Any) -> None:
    payload = bytes(range(256)) * 300
    local = tmp_path / "blob.bin"
    local.write_bytes(payload)
    adb_env.adb("-s", device.serial, "push", str(local), "/data/local/tmp/blob.bin")
    assert device.pull("/data/local/tmp/blob.bin") == payload
    with pytest.raises(DeviceCommandError, match="blob-missing"):
        device.pull("/data/local/tmp/blob-missing.bin")


# ----------------------------------------------------------------------------- observation


def test_screen_size_and_activity(device: AndroidDevice) -> None:
    assert device.screen_size() == (1080, 2280)
    package, activity = device.foreground_activity() or ("", "")
    assert package == LAUNCHER and activity.startswith(LAUNCHER)


def test_screenshot_raw_equals_png(adb_env: Any, device: AndroidDevice) -> None:
    raw = device.screenshot_raw()
    assert raw is not None
    assert raw.shape == (2280, 1080, 3) and raw.dtype == np.uint8
    png = device.screenshot_png()
    np.testing.assert_array_equal(raw, png)
    # An independent path: the adb CLI's exec-out PNG, decoded here.
    cli_png = adb_env.adb_bytes("-s", device.serial, "exec-out", "screencap", "-p")
    np.testing.assert_array_equal(raw, np.asarray(Image.open(io.BytesIO(cli_png)).convert("RGB")))
    assert raw.std() > 0  # a real frame, not a blank buffer
    np.testing.assert_array_equal(device.screenshot(), raw)


def test_screenshot_follows_the_screen(device: AndroidDevice) -> None:
    before = device.screenshot()
    device.tap(*element(device, resource_id="counter_button").center)
    after = device.screenshot()
    assert not np.array_equal(before, after)


def test_ui_elements_from_the_real_dump(device: AndroidDevice) -> None:
    elements = device.ui_elements()
    assert elements[0].index_path == (0,)
    assert elements[0].bounds == (0, 0, 1080, 2280)
    button = next(e for e in elements if e.resource_id.endswith(":id/counter_button"))
    assert button.text == "Tapped 0 times"
    assert button.clickable and button.enabled and button.focusable and not button.checked
    assert button.class_name == "android.widget.Button"
    assert button.package == LAUNCHER
    left, top, right, bottom = button.bounds
    assert 0 <= left < right <= 1080 and 0 <= top < bottom <= 2280
    field = next(e for e in elements if e.resource_id.endswith(":id/search_field"))
    assert field.long_clickable and not field.focused
    assert {e.content_desc for e in elements} >= {"Notes", "Settings", "Back", "Home"}
    # index paths identify nodes uniquely within one dump
    assert len({e.index_path for e in elements}) == len(elements)


def test_slow_routes_give_the_same_observation(device: AndroidDevice) -> None:
    xml, frame = device.ui_xml(), device.screenshot()
    device.dump_to_tty = False  # uiautomator dump to a file + sync pull
    device.raw_screencap = False  # screencap -p
    assert device.ui_xml() == xml
    np.testing.assert_array_equal(device.screenshot(), frame)


def test_ui_elements_same_for_u2_pretty_dump(device: AndroidDevice) -> None:
    import uiautomator2

    pretty = uiautomator2.connect(device.adb).dump_hierarchy(compressed=False, pretty=False)
    assert "visible-to-user" in pretty and "\r\n" in pretty  # really the u2 variant
    assert parse_ui_xml(pretty) == device.ui_elements()


def test_observe_bundles_everything(device: AndroidDevice) -> None:
    obs = device.observe(step=3)
    assert obs.step == 3
    assert obs.screenshot.shape == (2280, 1080, 3)
    assert obs.activity is not None and obs.activity[0] == LAUNCHER
    assert obs.find(text="Tapped 0 times") is not None
    assert obs.find(content_desc="Notes") is not None
    assert set(obs.timings) == {"screenshot", "ui_tree", "activity"}
    boxes = obs.annotation_boxes()
    button = obs.find(resource_id="counter_button")
    assert button is not None
    assert button.normalized_box(obs.screen_size) in boxes
    for y, x, h, w in boxes:
        assert 0 <= y <= 1 and 0 <= x <= 1 and 0 < h <= 1 and 0 < w <= 1


# ----------------------------------------------------------------------------- parser


SAMPLE = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">"
    '<node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="p" '
    'content-desc="" checkable="false" checked="false" clickable="false" enabled="true" '
    'focusable="false" focused="false" scrollable="false" long-clickable="false" password="false" '
    'selected="false" bounds="[0,0][100,200]">'
    '<node index="0" text="a &amp; b&#10;c" resource-id="p:id/x" class="android.widget.TextView" '
    'package="p" content-desc="d &quot;q&quot;" checkable="true" checked="true" clickable="true" '
    'enabled="false" focusable="true" focused="true" scrollable="true" long-clickable="true" '
    'password="true" selected="true" bounds="[10,20][30,40]" /></node></hierarchy>'
)


def test_parse_sample_exactly() -> None:
    root, child = parse_ui_xml(SAMPLE + "UI hierchary dumped to: /dev/tty\n")
    assert root == UIElement(
        class_name="android.widget.FrameLayout",
        package="p",
        bounds=(0, 0, 100, 200),
        index_path=(0,),
    )
    assert child == UIElement(
        text="a & b\nc",
        resource_id="p:id/x",
        class_name="android.widget.TextView",
        content_desc='d "q"',
        package="p",
        bounds=(10, 20, 30, 40),
        clickable=True,
        enabled=False,
        focused=True,
        focusable=True,
        scrollable=True,
        checkable=True,
        checked=True,
        selected=True,
        long_clickable=True,
        password=True,
        index_path=(0, 0),
    )
    assert child.center == (20, 30)
    assert child.normalized_box((100, 200)) == (0.1, 0.1, 0.1, 0.2)
    assert parse_ui_xml(SAMPLE.encode()) == [root, child]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("", "empty"),
        ("<hierarchy><node bounds='[0,0][1,1]'>", "not well-formed XML"),
        ("<root/>", "root is <root>"),
        ("<hierarchy><node index='0' bounds='[0,0]'/></hierarchy>", "bad bounds"),
        ("<hierarchy><node index='0'/></hierarchy>", "no bounds"),
        ("<hierarchy><node bounds='[0,0][1,1]' clickable='yes'/></hierarchy>", "clickable='yes'"),
        ("<hierarchy><item/></hierarchy>", "unexpected <item>"),
        ("<hierarchy><node index='x' bounds='[0,0][1,1]'/></hierarchy>", "index 'x'"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><hierarchy/>', "DOCTYPE"),
        (b"\xff\xfe<hierarchy/>", "UTF-8"),
    ],
)
def test_malformed_dumps_are_named(xml: str | bytes, message: str) -> None:
    with pytest.raises(UIDumpParseError, match=message.replace("(", r"\(")):
        parse_ui_xml(xml)


def test_characters_xml_forbids_become_replacement_characters() -> None:
    # A real device writes a field's text as it is: U+FFFF pasted by a policy, a control
    # character from an app. The observation keeps the rest of the screen.
    dump = (
        "<?xml version='1.0' ?><hierarchy rotation=\"0\">"
        '<node index="0" text="news \uffff\x01 today" bounds="[0,0][10,10]" /></hierarchy>'
    )
    (only,) = parse_ui_xml(dump)
    assert only.text == "news \ufffd\ufffd today"
    assert parse_ui_xml(dump.encode())[0].text == only.text


def test_pasted_noncharacters_keep_the_dump_parseable(adb_env: Any, device: AndroidDevice) -> None:
    # qgs11 (2026-11-24): a policy typed "...Indonesiaage \uffff..." and every retry of the
    # episode failed on an unparseable dump. The phone strips such characters to "." as AOSP's
    # dumper does for controls; the field itself holds what was pasted.
    import uiautomator2

    text = "news \uffff\ufffe\ufdd0 today"
    focus_field(device)
    device.type_text(text)
    assert truth(adb_env, device.serial)["field_text"] == text
    field = element(device, resource_id="search_field")
    assert field.text == "news ... today"
    pretty = uiautomator2.connect(device.adb).dump_hierarchy(compressed=False, pretty=False)
    assert parse_ui_xml(pretty) == device.ui_elements()
    assert device.observe().ui_elements == device.ui_elements()


def test_observation_rejects_bad_screenshots() -> None:
    with pytest.raises(ValueError, match="screenshot"):
        Observation(np.zeros((4, 4, 4), np.uint8), [], None)
    with pytest.raises(ValueError, match="screenshot"):
        Observation(np.zeros((4, 4, 3), np.float32), [], None)


# ----------------------------------------------------------------------------- actions


def test_tap_and_dual_point_tap(adb_env: Any, device: AndroidDevice) -> None:
    x, y = element(device, resource_id="counter_button").center
    device.tap(x, y)
    assert truth(adb_env, device.serial)["counter"] == 1
    width, height = device.screen_size()
    # touch and lift 0.03 apart (<= 0.04): AitW calls it a tap
    device.execute(Action.swipe((y / height, x / width), (y / height, x / width + 0.03)))
    assert truth(adb_env, device.serial)["counter"] == 2
    assert element(device, resource_id="counter_button").text == "Tapped 2 times"


def test_dual_point_swipe_is_not_a_tap(adb_env: Any, device: AndroidDevice) -> None:
    x, y = element(device, resource_id="counter_button").center
    width, height = device.screen_size()
    before = truth(adb_env, device.serial)
    # from the button to far away: a swipe (the minimal world has nothing to scroll)
    device.execute(Action.swipe((y / height, x / width), (min(1.0, y / height + 0.4), x / width)))
    device.swipe(x, y, x, y + 400, duration_ms=100)
    assert truth(adb_env, device.serial) == before


def test_tap_outside_screen_is_rejected(device: AndroidDevice) -> None:
    with pytest.raises(ValueError, match="outside the screen"):
        device.tap(1080, 10)
    with pytest.raises(ValueError, match="finite"):
        device.tap(math.nan, 10)


def test_type_enter_back_home(adb_env: Any, device: AndroidDevice) -> None:
    serial = device.serial
    focus_field(device)
    assert truth(adb_env, serial)["field_focused"] is True
    device.execute(Action.type("hello world"))
    assert truth(adb_env, serial)["field_text"] == "hello world"
    device.execute(Action.enter())
    state = truth(adb_env, serial)
    assert state["submitted"] == ["hello world"] and state["field_text"] == ""

    device.tap(*element(device, content_desc="Notes").center)
    assert truth(adb_env, serial)["screen"] == "notes"
    assert device.foreground_activity() == NOTES
    device.execute(Action.back())
    assert truth(adb_env, serial)["screen"] == "home"

    device.tap(*element(device, content_desc="Settings").center)
    assert truth(adb_env, serial)["screen"] == "settings"
    device.execute(Action.home())
    assert truth(adb_env, serial)["screen"] == "home"


def test_status_actions_do_nothing(adb_env: Any, device: AndroidDevice) -> None:
    before = truth(adb_env, device.serial)
    device.execute(Action.complete())
    device.execute(Action.impossible())
    assert truth(adb_env, device.serial) == before
    with pytest.raises(ValueError, match="INVALID"):
        device.execute(Action.invalid("model babbled"))


def test_launch_app_and_force_stop(adb_env: Any, device: AndroidDevice) -> None:
    device.launch_app("com.example.notes")
    assert truth(adb_env, device.serial)["screen"] == "notes"
    device.force_stop("com.example.notes")
    assert truth(adb_env, device.serial)["screen"] == "home"
    device.launch_app(*NOTES)
    assert device.foreground_activity() == NOTES
    with pytest.raises(DeviceCommandError, match="com.nope.app"):
        device.launch_app("com.nope.app")
    with pytest.raises(ValueError, match="package name"):
        device.launch_app("com.example.notes;reboot")
    with pytest.raises(ValueError, match="activity"):
        device.launch_app("com.example.notes", "Main$(reboot)")


def test_open_url_is_quoted(adb_env: Any, device: AndroidDevice) -> None:
    # The minimal world has no browser: the intent fails, and nothing in the URL runs.
    with pytest.raises(DeviceCommandError, match="unable to resolve"):
        device.open_url("https://example.com/?q=$(reboot);reboot&x=`reboot`")
    assert device.shell(["getprop", "sys.digiq.boot_count"]).text.strip() == "1"
    with pytest.raises(ValueError, match="url"):
        device.open_url("https://example.com/\nreboot")


# ----------------------------------------------------------------------------- typing

ADVERSARIAL = [
    "a b",
    "it's",
    "%s",
    "100%s sure",
    "%%s",
    "$(reboot)",
    "; rm -rf /",
    "`id`",
    '"double" quotes',
    "'single'",
    "back\\slash",
    "\\n",
    "&&",
    "|",
    "a  b  ",
    "$HOME ${PATH} $?",
    "* ? [a] ~",
    "-n",
    "<tag> > out",
    "café 東京",
    "emoji 🙂",
    "tab\there",
]


def test_adversarial_text_arrives_literally(
    adb_env: Any, device: AndroidDevice, tmp_path: Any
) -> None:
    serial = device.serial
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    adb_env.adb("-s", serial, "push", str(canary), "/sdcard/canary.txt")
    for text in ADVERSARIAL:
        focus_field(device)
        device.type_text(text)
        state = truth(adb_env, serial)
        assert state["field_text"] == text, f"typed {text!r}, field shows {state['field_text']!r}"
        device.press_enter()  # submits and clears the field
        assert truth(adb_env, serial)["submitted"][-1] == text
    assert (
        adb_env.adb("-s", serial, "shell", "getprop", "sys.digiq.boot_count").stdout.strip() == "1"
    )
    assert adb_env.adb("-s", serial, "shell", "cat", "/sdcard/canary.txt").stdout == "still here"


def test_type_action_through_execute(adb_env: Any, device: AndroidDevice) -> None:
    focus_field(device)
    device.execute(Action.type('say "%s" to $(id)'))
    assert truth(adb_env, device.serial)["field_text"] == 'say "%s" to $(id)'


@pytest.mark.parametrize(
    "text", ["bell\x07", "nul\x00byte", "\x1b[31mred", "del\x7f", "c1\x85", "\ud800"]
)
def test_untypeable_text_raises(adb_env: Any, device: AndroidDevice, text: str) -> None:
    focus_field(device)
    with pytest.raises(UntypeableTextError) as info:
        device.type_text(text)
    assert info.value.text == text
    assert repr(text) in str(info.value) and device.serial in str(info.value)
    assert truth(adb_env, device.serial)["field_text"] == ""


def test_non_ascii_without_uiautomator2_is_untypeable(adb_env: Any, device: AndroidDevice) -> None:
    plain = AndroidDevice(device.serial, adb_port=device.adb_port, use_uiautomator2=False)
    focus_field(plain)
    for text in ("café", "50%s"):
        with pytest.raises(UntypeableTextError, match="uiautomator2"):
            plain.type_text(text)
    plain.type_text("plain ascii")  # the input-text route still works
    assert truth(adb_env, device.serial)["field_text"] == "plain ascii"


def test_type_text_rejects_non_strings(device: AndroidDevice) -> None:
    with pytest.raises(ValueError, match="str"):
        device.type_text(42)  # type: ignore[arg-type]


def test_swipe_actions_scroll_a_page_on_the_phone(adb_env: Any) -> None:
    """A DUAL_POINT far apart is executed as a real swipe: the page scrolls by the finger travel."""
    (raw,) = adb_env.start_devices(1, world="phone", wildness=0.0)
    device = AndroidDevice(raw.serial, adb_port=adb_env.port)
    device.open_url("https://www.ebay.com/sch/i.html?_nkw=razer+kraken")

    def truth() -> dict[str, Any]:
        return json.loads(raw.shell("dumpsys digiq-sim"))["chrome"]

    assert truth()["page"] == "search_results" and truth()["scroll"] == 0
    width, height = device.screen_size()
    # finger from 70% to 50% of the height: content moves up by 20% of the screen
    device.execute(Action.swipe((0.7, 0.5), (0.5, 0.5)))
    scrolled = truth()["scroll"]
    assert abs(scrolled - round(0.2 * height)) <= 2, scrolled
    device.execute(Action.swipe((0.3, 0.5), (0.8, 0.5)))  # finger down past the top: back to 0
    assert truth()["scroll"] == 0
    # a tap-sized DUAL_POINT (< 0.04 apart) is a tap, not a scroll: it opens the card under it
    device.execute(Action.swipe((0.6, 0.5), (0.62, 0.5)))
    assert truth()["page"] == "product"
