import pytest

from vl.errors import ConfigError
from vl.registry import Registry


def test_register_get_build():
    reg = Registry("widget")

    @reg.register("double")
    def double(x):
        return 2 * x

    @reg.register()
    def triple(x):
        return 3 * x

    assert reg.get("double") is double
    assert reg.build("triple", 4) == 12
    assert "double" in reg and "nope" not in reg
    assert reg.keys() == ["double", "triple"] and len(reg) == 2


def test_unknown_name_suggests_nearest():
    reg = Registry("widget")
    reg.register("encoder")(lambda: None)
    with pytest.raises(ConfigError, match="unknown widget 'encodr'; did you mean 'encoder'"):
        reg.get("encodr")


def test_duplicate_registration_is_an_error():
    reg = Registry("widget")
    reg.register("a")(lambda: None)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(lambda: None)
