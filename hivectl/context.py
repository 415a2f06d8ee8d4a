"""What every operation needs (settings, host, store, driver), built lazily so that cheap commands stay cheap.

It lives below the CLI because every front end builds one: the command line, the Python API
(``hivectl.api``), the supervisor (``hivectl.runner.supervisor``) and later the REST daemon. Nothing here
prints; applying or printing a plan is the front end's business.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:  # imported where first used: ``hivectl --version`` or ``help`` need none of them
    from functools import cached_property

    from hivectl.drivers.base import Driver
    from hivectl.host.base import Host
    from hivectl.hostconf import HostSettings
    from hivectl.store import Store
else:

    class cached_property:  # stands in for functools.cached_property: same name, same behaviour
        """``functools.cached_property`` without importing functools (and the collections it imports).

        The value is computed on first access and kept in the instance's ``__dict__``, which then shadows
        this non-data descriptor; ``Context.refresh`` forgets values by popping them from there.
        """

        def __init__(self, function):  # type: ignore[no-untyped-def]
            self.function = function
            self.name = function.__name__

        def __get__(self, instance, owner=None):  # type: ignore[no-untyped-def]
            if instance is None:
                return self
            value = instance.__dict__[self.name] = self.function(instance)
            return value


class Context:
    """Settings, host and store for one invocation (or one API object)."""

    def __init__(self, driver: str | None = None, vm_dir: str | None = None, host: Host | None = None) -> None:
        self.driver_option = driver
        self.vm_dir_option = vm_dir
        if host is not None:
            self.__dict__["host"] = host

    @cached_property
    def host(self) -> Host:
        from hivectl.host.local import LocalHost

        return LocalHost()

    @cached_property
    def settings(self) -> HostSettings:
        from hivectl.hostconf import load_settings

        return load_settings(self.vm_dir_option)

    @cached_property
    def store(self) -> Store:
        from hivectl.store import Store

        if "host" in self.__dict__:  # given, or already built
            return Store(self.settings, self.host)
        return Store(self.settings, make_host=lambda: self.host)  # ``list`` on directories builds none

    @cached_property
    def driver(self) -> str:
        """The driver's name: ``bhyve`` or ``qemu`` (``--driver``, ``HIVECTL_DRIVER``, else the platform's)."""
        from hivectl.platforms import default_driver

        return default_driver(self.driver_option)

    def driver_impl(self) -> Driver:
        """The driver object for this host and store (built on demand: it imports the driver's modules)."""
        from hivectl.drivers import get_driver

        return get_driver(self.driver, self.host, self.store)

    def refresh(self) -> None:
        """Forget the settings and store read so far (after a change to rc.conf or system.conf)."""
        self.__dict__.pop("settings", None)
        self.__dict__.pop("store", None)
