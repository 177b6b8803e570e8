"""fervid's exceptions. Each carries the one-line message the CLI prints for the same problem."""


class Error(RuntimeError):
    """Something fervid cannot do; the base of the others."""


class WeightsError(Error):
    """A weights file or model card that cannot be used (format, card, tensors, values)."""


class InputError(Error, ValueError):
    """Frames handed over in memory that cannot be classified (not 8-bit RGB, empty).

    A bad file is not an exception: its result carries the error and the run goes on.
    """


class OptionError(Error, ValueError):
    """An option that cannot be used: an unknown value, a combination, a batch size."""


class DeviceError(Error):
    """The GPU: none usable, out of its memory, or a failed CUDA, cuDNN or cuBLAS call."""


class Notice(UserWarning):
    """What fervid chose for you and why (e.g. the CPU backend when there is no GPU)."""


class UntrainedWeights(UserWarning):
    """The weights are untrained ones (fervid make-weights): their labels mean nothing."""
