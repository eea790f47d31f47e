"""The ISMRMRD XML header of fastMRI files: build a valid one, read the fields fastMRI uses.

fastMRI reads three things from ``ismrmrd_header``: the encoded matrix size (k-space grid,
``x`` = readout = rows ``H``, ``y`` = phase encoding = columns ``W``), the reconstruction
matrix size (the image crop), and the limits of ``kspace_encoding_step_1``, from which it
derives the zero-padded phase-encoding columns at both edges of k-space::

    padding_left  = encoding_size[1] // 2 - limits.center
    padding_right = padding_left + limits.maximum + 1
"""

from __future__ import annotations

import xml.etree.ElementTree as etree
from dataclasses import dataclass
from xml.sax.saxutils import escape

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"


class HeaderError(ValueError):
    """The ISMRMRD header is missing, is not XML, or lacks a field that is needed."""


@dataclass(frozen=True)
class HeaderInfo:
    """The header fields a fastMRI dataset uses.

    Attributes:
        encoding_size: encoded k-space matrix ``(x, y, z)``; ``x`` is the readout (rows).
        recon_size: reconstruction matrix ``(x, y, z)``: the size images are cropped to.
        padding_left: first acquired phase-encoding column.
        padding_right: one past the last acquired phase-encoding column.
    """

    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int

    def as_metadata(self) -> dict:
        """The derived metadata fastMRI's ``SliceDataset`` adds to every sample's attrs."""
        return {
            "padding_left": self.padding_left,
            "padding_right": self.padding_right,
            "encoding_size": self.encoding_size,
            "recon_size": self.recon_size,
        }


def _find_text(root: etree.Element, path: list[str]) -> str:
    query = "." + "".join(f"//ismrmrd:{name}" for name in path)
    node = root.find(query, {"ismrmrd": ISMRMRD_NAMESPACE})
    if node is None or node.text is None or not node.text.strip():
        raise HeaderError(f"missing field {'/'.join(path)}")
    return node.text.strip()


def _find_int(root: etree.Element, path: list[str]) -> int:
    text = _find_text(root, path)
    try:
        return int(text)
    except ValueError as err:
        raise HeaderError(f"field {'/'.join(path)} must be an integer, got {text!r}") from err


def parse_ismrmrd_header(xml: bytes | str) -> HeaderInfo:
    """Read the matrix sizes and phase-encoding limits from an ISMRMRD XML header.

    Follows fastMRI's ``SliceDataset._retrieve_metadata`` (the first match of each field,
    anywhere below the root, in the ISMRMRD namespace).

    Args:
        xml: the header, as stored in a fastMRI file's ``ismrmrd_header`` dataset.

    Returns:
        The parsed :class:`HeaderInfo`.

    Raises:
        HeaderError: the text is not XML or a needed field is missing or not an integer.
    """
    if isinstance(xml, (bytes, bytearray)):
        data = bytes(xml)
    elif isinstance(xml, str):
        data = xml.encode("utf-8")
    else:
        raise HeaderError(f"the header must be XML bytes or str, got {type(xml).__name__}")
    try:
        root = etree.fromstring(data)
    except etree.ParseError as err:
        raise HeaderError(f"the header is not valid XML ({err})") from err
    enc = ["encoding", "encodedSpace", "matrixSize"]
    rec = ["encoding", "reconSpace", "matrixSize"]
    lims = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    encoding_size = tuple(_find_int(root, enc + [axis]) for axis in "xyz")
    recon_size = tuple(_find_int(root, rec + [axis]) for axis in "xyz")
    center = _find_int(root, lims + ["center"])
    maximum = _find_int(root, lims + ["maximum"])
    padding_left = encoding_size[1] // 2 - center
    return HeaderInfo(
        encoding_size=encoding_size,  # type: ignore[arg-type]
        recon_size=recon_size,  # type: ignore[arg-type]
        padding_left=padding_left,
        padding_right=padding_left + maximum + 1,
    )


def _xyz(tag: str, values: tuple) -> str:
    inner = "".join(f"<{axis}>{value}</{axis}>" for axis, value in zip("xyz", values))
    return f"<{tag}>{inner}</{tag}>"


def _limit(tag: str, minimum: int, maximum: int, center: int) -> str:
    return (
        f"<{tag}><minimum>{minimum}</minimum><maximum>{maximum}</maximum>"
        f"<center>{center}</center></{tag}>"
    )


def make_ismrmrd_header(
    encoding_size: tuple[int, int],
    recon_size: tuple[int, int],
    *,
    num_coils: int,
    num_slices: int,
    fov_mm: tuple[float, float, float] | None = None,
    recon_fov_mm: tuple[float, float, float] | None = None,
    pe_limits: tuple[int, int, int] | None = None,
    field_strength_t: float = 3.0,
    vendor: str = "recon (simulated)",
    protocol_name: str = "",
) -> bytes:
    """Build a minimal, schema-conforming ISMRMRD header for a Cartesian 2-D acquisition.

    Args:
        encoding_size: k-space matrix ``(rows H, columns W)`` = ISMRMRD ``(x, y)``.
        recon_size: image matrix the reconstruction is cropped to ``(x, y)``.
        num_coils: receiver channels.
        num_slices: slices in the file.
        fov_mm: encoded field of view ``(x, y, z)`` in mm (default: 1 mm per sample,
            z = 1 mm slice thickness).
        recon_fov_mm: reconstructed field of view (default: ``fov_mm`` scaled to ``recon_size``).
        pe_limits: ``(minimum, maximum, center)`` of ``kspace_encoding_step_1`` (default:
            every column acquired, ``(0, W - 1, W // 2)``: no padding).
        field_strength_t: main field, sets ``H1resonanceFrequency_Hz``.
        vendor: ``systemVendor``.
        protocol_name: ``protocolName`` in ``measurementInformation`` (e.g. ``AXT1``).

    Returns:
        The UTF-8 encoded XML document.

    Raises:
        ValueError: a size is not positive or the limits fall outside the matrix.
    """
    enc_h, enc_w = (int(v) for v in encoding_size)
    rec_h, rec_w = (int(v) for v in recon_size)
    if min(enc_h, enc_w, rec_h, rec_w) < 1:
        raise ValueError(
            f"encoding_size and recon_size must be positive, got {encoding_size} and {recon_size}"
        )
    if num_coils < 1 or num_slices < 1:
        raise ValueError(f"num_coils and num_slices must be >= 1, got {num_coils} and {num_slices}")
    if fov_mm is None:
        fov_mm = (float(enc_h), float(enc_w), 1.0)
    if recon_fov_mm is None:
        recon_fov_mm = (fov_mm[0] * rec_h / enc_h, fov_mm[1] * rec_w / enc_w, fov_mm[2])
    if pe_limits is None:
        pe_limits = (0, enc_w - 1, enc_w // 2)
    pe_min, pe_max, pe_center = (int(v) for v in pe_limits)
    if not (0 <= pe_min <= pe_center <= pe_max):
        raise ValueError(f"pe_limits must satisfy 0 <= minimum <= center <= maximum, got {pe_limits}")
    protocol = f"<protocolName>{escape(protocol_name)}</protocolName>" if protocol_name else ""
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        f"<measurementInformation><patientPosition>HFS</patientPosition>{protocol}"
        "</measurementInformation>"
        "<acquisitionSystemInformation>"
        f"<systemVendor>{escape(vendor)}</systemVendor>"
        f"<systemFieldStrength_T>{field_strength_t:g}</systemFieldStrength_T>"
        f"<receiverChannels>{int(num_coils)}</receiverChannels>"
        "</acquisitionSystemInformation>"
        "<experimentalConditions>"
        f"<H1resonanceFrequency_Hz>{int(round(42.577478e6 * field_strength_t))}</H1resonanceFrequency_Hz>"
        "</experimentalConditions>"
        "<encoding>"
        "<encodedSpace>" + _xyz("matrixSize", (enc_h, enc_w, 1))
        + _xyz("fieldOfView_mm", tuple(f"{v:g}" for v in fov_mm)) + "</encodedSpace>"
        "<reconSpace>" + _xyz("matrixSize", (rec_h, rec_w, 1))
        + _xyz("fieldOfView_mm", tuple(f"{v:g}" for v in recon_fov_mm)) + "</reconSpace>"
        "<encodingLimits>"
        + _limit("kspace_encoding_step_1", pe_min, pe_max, pe_center)
        + _limit("kspace_encoding_step_2", 0, 0, 0)
        + _limit("average", 0, 0, 0)
        + _limit("slice", 0, int(num_slices) - 1, 0)
        + _limit("contrast", 0, 0, 0)
        + _limit("phase", 0, 0, 0)
        + _limit("repetition", 0, 0, 0)
        + _limit("set", 0, 0, 0)
        + _limit("segment", 0, 0, 0)
        + "</encodingLimits>"
        "<trajectory>cartesian</trajectory>"
        "</encoding>"
        "</ismrmrdHeader>"
    )
    return xml.encode("utf-8")
