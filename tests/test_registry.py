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


def test_a_registered_class_knows_its_name():
    reg = Registry("widget")

    @reg.register("gadget")
    class Gadget:
        pass

    assert Gadget.registry_name == "gadget"


def test_every_head_module_registers_itself():
    """A new head file under vl/heads/ is found without editing the package's __init__."""
    import pkgutil

    import vl.heads
    from vl.registry import HEADS

    modules = {m.name for m in pkgutil.iter_modules(vl.heads.__path__)} - {"build", "fusion", "grid_read", "pointer_read"}  # building blocks of heads
    assert modules <= set(HEADS.keys()) | {"__init__"}
