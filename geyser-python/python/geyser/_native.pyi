"""Type stubs for geyser's native module (re-exported by the ``geyser`` package)."""

from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union

__version__: str

_Device = Union[str, int, Any]
"""``"cpu"``, ``"cuda"``, ``"cuda:N"``, a CUDA ordinal, or a ``torch.device``."""

class Frame:
    """One frame from a :class:`Consumer`.

    ``numpy()`` copies it into a new NumPy array (every device). On CUDA it is a DLPack
    producer and has ``__cuda_array_interface__``: ``torch.from_dlpack(frame)`` and
    ``cupy.from_dlpack(frame)`` alias the frame's GPU memory, and the consumer's stream waits on
    the GPU for the producer's write. Tensors made from a frame alias it until it is released:
    clone what you keep. Released by ``release()``, the end of its ``with`` block, the
    consumer's next frame, or garbage collection.
    """

    @property
    def number(self) -> int:
        """The producer's frame number (0, 1, 2, ... with gaps where frames were skipped)."""
    @property
    def slot(self) -> int:
        """The ring slot holding it."""
    @property
    def shape(self) -> List[int]:
        """``[height, width]`` or ``[height, width, channels]``."""
    @property
    def dtype(self) -> str:
        """Element type, as NumPy names it (``"uint8"``, ``"float32"``...)."""
    @property
    def format(self) -> str:
        """The texture format, e.g. ``"rgba8unorm"``."""
    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``."""
    @property
    def latency(self) -> float:
        """Seconds from the producer sending the frame message to this process receiving it."""
    @property
    def age(self) -> float:
        """Seconds from the producer presenting the frame to this process receiving it."""
    @property
    def sent_ns(self) -> int:
        """When the producer sent the frame message (``CLOCK_MONOTONIC`` ns, the clock of
        ``time.monotonic_ns()``)."""
    @property
    def received_ns(self) -> int:
        """When this process received the frame message (``CLOCK_MONOTONIC`` ns)."""
    @property
    def released(self) -> bool:
        """Whether it was released."""
    def numpy(self) -> Any:
        """A copy of the frame in a new ``numpy.ndarray`` (waits for the producer's write)."""
    def release(self, stream: Optional[int] = None) -> None:
        """Releases the frame to its producer. On CUDA, once the work queued on ``stream`` (by
        default the stream of its last ``__dlpack__`` export, else the legacy default stream)
        has run: the producer's GPU waits for it, not the host."""
    def __enter__(self) -> "Frame": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def __dlpack_device__(self) -> Tuple[int, int]:
        """``(2, ordinal)`` (kDLCUDA) for CUDA frames, ``(1, 0)`` (kDLCPU) for host frames."""
    def __dlpack__(
        self,
        *,
        stream: Optional[int] = None,
        max_version: Optional[Tuple[int, int]] = None,
        dl_device: Optional[Tuple[int, int]] = None,
        copy: Optional[bool] = None,
    ) -> Any:
        """A DLPack capsule. CUDA: zero-copy for linear frames (texture layout: copied once
        into linear memory on ``stream``), after making ``stream`` wait for the producer's
        write (``None``: the legacy default stream; ``-1``: waited for here). Host frames: a
        host copy. ``dl_device=(1, 0)`` with a CUDA frame gives a host copy."""
    @property
    def __cuda_array_interface__(self) -> Dict[str, Any]:
        """CUDA Array Interface v3 (CUDA frames only; ``AttributeError`` on host frames). The
        legacy default stream waits for the producer's write; ``stream`` is 1."""

class Consumer:
    """Receives frames from a producer in another process.

    ``device="cpu"`` reads frames into host memory (``frame.numpy()``); ``device="cuda"`` or
    ``"cuda:N"`` imports them into CUDA and exports them zero-copy (``torch.from_dlpack``).
    ``layout`` is ``"linear"`` (the producer also copies each frame into a shared buffer on its
    GPU, which tensors address; the default on CUDA) or ``"texture"`` (the producer's
    textures; the default on the CPU). ``lossless`` keeps every frame (for producers in
    lossless mode); ``sync`` forces ``"timeline"`` or ``"host"`` synchronization;
    ``host_ring`` asks for frames through host memory; ``timeout`` bounds the handshake.

    Iterating yields frames until the producer ends the stream (a producer that dies raises
    ``PeerGoneError``). One frame is held at a time: asking for the next releases the one
    before.
    """

    def __init__(
        self,
        name: str,
        device: Optional[_Device] = None,
        layout: Optional[str] = None,
        lossless: bool = False,
        sync: Optional[str] = None,
        host_ring: bool = False,
        timeout: float = 5.0,
    ) -> None: ...
    def next_frame(self, timeout: Optional[float] = None) -> Frame:
        """The next frame (at most ``timeout`` seconds; forever with ``None``), releasing the
        previous one. ``PeerGoneError`` when the producer ends the stream or dies,
        ``TimeoutError`` when none comes in time."""
    def __iter__(self) -> Iterator[Frame]: ...
    def __next__(self) -> Frame: ...
    def close(self) -> None:
        """Disconnects (releasing the held frame). Tensors exported earlier stay valid
        memory, no longer updated."""
    def __enter__(self) -> "Consumer": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    @property
    def name(self) -> str:
        """The endpoint name."""
    @property
    def shape(self) -> List[int]:
        """Frame shape."""
    @property
    def dtype(self) -> str:
        """Element type (NumPy name)."""
    @property
    def format(self) -> str:
        """The frames' texture format."""
    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``."""
    @property
    def layout(self) -> str:
        """``"linear"`` or ``"texture"``."""
    @property
    def sync(self) -> str:
        """``"timeline"`` (GPU waits) or ``"host"``."""
    @property
    def transfer_path(self) -> str:
        """``"Direct"``, ``"HostMemory"`` or ``"CpuCopy"``."""
    @property
    def counters(self) -> Dict[str, int]:
        """``frames`` handed out, ``skipped`` (never seen), ``superseded`` (released unseen)."""

class Producer:
    """Publishes arrays as frames to consumers in other processes (Rust, wgpu, CUDA, Python).

    ``shape`` is ``(height, width)`` or ``(height, width, channels)`` with 1, 2 or 4 channels;
    ``dtype`` (default ``"uint8"``) or ``format`` (e.g. ``"bgra8unorm"``) says what a texel
    is. ``device="cuda"`` copies CUDA arrays into the shared slot on the GPU (host arrays work
    on either device). ``slots`` is the ring size; ``lossless`` delivers every frame to every
    consumer (``publish`` waits for a free slot).
    """

    def __init__(
        self,
        name: str,
        shape: Tuple[int, ...],
        dtype: Optional[Any] = None,
        format: Optional[str] = None,
        device: Optional[_Device] = None,
        slots: int = 3,
        lossless: bool = False,
        sync: Optional[str] = None,
    ) -> None: ...
    def publish(self, array: Any, timeout: Optional[float] = None) -> int:
        """Publishes ``array`` (NumPy, PyTorch, CuPy: anything with ``__dlpack__``) as the
        next frame; returns its number. Shape and dtype must be the producer's; rows may be
        padded, texels must be contiguous. Waits at most ``timeout`` seconds for a free slot."""
    def wait_for_consumers(self, n: int = 1, timeout: float = 30.0) -> None:
        """Waits until at least ``n`` consumers are connected (``TimeoutError`` otherwise)."""
    @property
    def consumer_count(self) -> int:
        """Consumers connected now."""
    @property
    def frames(self) -> int:
        """Frames published so far."""
    @property
    def sync(self) -> str:
        """``"timeline"`` or ``"host"``: the best synchronization offered."""
    @property
    def name(self) -> str:
        """The endpoint name."""
    @property
    def shape(self) -> List[int]:
        """Frame shape."""
    @property
    def dtype(self) -> str:
        """Element type (NumPy name)."""
    @property
    def format(self) -> str:
        """Texture format of the frames."""
    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``."""
    def close(self) -> None:
        """Ends the stream (consumers see a clean end) and frees the endpoint."""
    def __enter__(self) -> "Producer": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def cuda_devices() -> List[Dict[str, Any]]:
    """The CUDA devices of this machine as ``{"ordinal", "name", "uuid"}`` dicts;
    ``UnsupportedError`` without a CUDA driver."""

def _validation_errors() -> Tuple[int, List[str]]:
    """Vulkan validation errors reported in this process (count, first messages)."""
