"""Exceptions raised by geyser: one class per kind of ``geyser::Error`` in the Rust library.

Every exception derives from :class:`GeyserError`; several also derive from the built-in
exception a Python program would catch for the same situation (``TimeoutError``,
``ValueError``, ``ConnectionError``, ``FileNotFoundError``, ``PermissionError``, ``OSError``).
Each carries ``kind``: the Rust variant's name (``"PeerGone"``, ``"Timeout"``...).
"""

import builtins


class GeyserError(Exception):
    """Base class of every geyser error."""

    kind: str = "Other"


class UnsupportedError(GeyserError):
    """The device, driver or platform lacks what the operation needs (e.g. no CUDA driver)."""


class InvalidDescriptorError(GeyserError, ValueError):
    """A frame description (size, format, usages) is invalid."""


class InvalidArgumentError(GeyserError, ValueError):
    """An argument is wrong (the message says which and why)."""


class DescriptorMismatchError(GeyserError, ValueError):
    """What was imported differs from what was exported."""


class DeviceMismatchError(GeyserError):
    """The memory belongs to another GPU or driver than the one importing it."""


class UnknownHandleError(GeyserError):
    """An export handle that is not known (never issued or already released)."""


class WrongTextureError(GeyserError, ValueError):
    """A texture of another device or backend was passed."""


class NoDeviceError(GeyserError):
    """No device matches the selection; the message lists the devices present."""


class LoaderError(GeyserError):
    """The Vulkan loader or driver could not be loaded."""


class VulkanError(GeyserError):
    """A Vulkan call failed."""


class CudaError(GeyserError):
    """A CUDA driver call failed."""


class PeerGoneError(GeyserError, ConnectionError):
    """The producer (or consumer) closed the connection or died."""


class ProtocolError(GeyserError):
    """The peer broke the wire protocol; the connection is closed."""


class VersionMismatchError(GeyserError):
    """The peer runs another Geyser protocol version."""


class NotFoundError(GeyserError, FileNotFoundError):
    """No producer listens at this endpoint name."""


class AddressInUseError(GeyserError, OSError):
    """A live producer already owns this endpoint name."""


class PermissionDeniedError(GeyserError, PermissionError):
    """The peer is not allowed (another user, failed credential check)."""


class RejectedError(GeyserError):
    """The producer refused this consumer, or dropped it; ``reason`` says why
    (``busy``, ``policy``, ``device``, ``sync``, ``limit``) and ``retryable`` whether trying
    again later may succeed."""

    reason: str = ""
    retryable: bool = False
    detail: str = ""


class InternalError(GeyserError):
    """A bug in Geyser (please report it)."""


class TimeoutError(GeyserError, builtins.TimeoutError):
    """An operation did not finish in time (e.g. no frame within the timeout)."""


class IoError(GeyserError, OSError):
    """An OS call failed."""


__all__ = [name for name in dir() if name.endswith("Error")]
