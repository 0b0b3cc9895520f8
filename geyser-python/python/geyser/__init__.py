"""Geyser: GPU frames shared between processes without copies.

``Consumer`` receives frames from a producer in another process (a Rust, wgpu, CUDA or
Python producer): ``frame.numpy()`` gives a host copy on any machine; on CUDA
(``Consumer(name, device="cuda")``) frames are DLPack producers, so ``torch.from_dlpack(frame)``
and ``cupy.from_dlpack(frame)`` alias the frame's GPU memory, with the wait for the
producer's write enqueued on the consumer's stream. ``Producer`` publishes NumPy, PyTorch or
CuPy arrays as frames (a GPU copy into the shared slot for CUDA arrays).

Errors are ``GeyserError`` subclasses, one per kind of failure (see ``geyser._errors``).
"""

from ._errors import (
    AddressInUseError,
    CudaError,
    DescriptorMismatchError,
    DeviceMismatchError,
    GeyserError,
    InternalError,
    InvalidArgumentError,
    InvalidDescriptorError,
    IoError,
    LoaderError,
    NoDeviceError,
    NotFoundError,
    PeerGoneError,
    PermissionDeniedError,
    ProtocolError,
    RejectedError,
    TimeoutError,
    UnknownHandleError,
    UnsupportedError,
    VersionMismatchError,
    VulkanError,
    WrongTextureError,
)
from ._native import Consumer, Frame, Producer, __version__, cuda_devices

__all__ = [
    "Consumer",
    "Frame",
    "Producer",
    "cuda_devices",
    "__version__",
    "GeyserError",
    "AddressInUseError",
    "CudaError",
    "DescriptorMismatchError",
    "DeviceMismatchError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidDescriptorError",
    "IoError",
    "LoaderError",
    "NoDeviceError",
    "NotFoundError",
    "PeerGoneError",
    "PermissionDeniedError",
    "ProtocolError",
    "RejectedError",
    "TimeoutError",
    "UnknownHandleError",
    "UnsupportedError",
    "VersionMismatchError",
    "VulkanError",
    "WrongTextureError",
]
