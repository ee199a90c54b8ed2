"""PDFs with known text for tests: real text pages (standard fonts), image-only pages, rotated and hostile ones.

A tiny PDF writer, so each page's fonts, sizes, rotation and media box are exactly what the test says.
pypdf makes the encrypted variants; Pillow draws the image-only pages with DejaVu fonts.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

# PDF's standard fonts: every reader (PDFium included) carries them, no font file needed.
FONTS = ("Helvetica", "Times-Roman", "Courier", "Helvetica-Bold")


@dataclass
class Page:
    """One page: lines of text in a standard font, or an image (a scan), with optional /Rotate."""

    lines: list[str] = field(default_factory=list)
    font: str = "Helvetica"
    size: float = 24
    width: float = 612  # points (US Letter)
    height: float = 792
    rotate: int = 0
    image: Image.Image | None = None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build_pdf(pages: list[Page], *, declared_count: int | None = None) -> bytes:
    """Write a PDF of these pages; `declared_count` lies about /Count (a hostile header)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree's number is known
    tree = add(b"")
    kids = []
    for page in pages:
        resources = []
        if page.image is not None:
            rgb = page.image.convert("RGB")
            raw = zlib.compress(rgb.tobytes())
            header = (
                f"<< /Type /XObject /Subtype /Image /Width {rgb.width} /Height {rgb.height} /ColorSpace /DeviceRGB "
                f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(raw)} >>\nstream\n"
            )
            image = add(header.encode() + raw + b"\nendstream")
            resources.append(f"/XObject << /Im0 {image} 0 R >>")
            content = f"q {page.width:g} 0 0 {page.height:g} 0 0 cm /Im0 Do Q".encode()
        else:
            font = add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{page.font} >>".encode())
            resources.append(f"/Font << /F0 {font} 0 R >>")
            if page.rotate == 90:
                # Drawn running up the media box, so the page reads upright once /Rotate 90 turns it.
                start = f"0 1 -1 0 {50 + page.size:g} 50 Tm"
            else:
                start = f"50 {page.height - 50 - page.size:g} Td"
            ops = [f"BT /F0 {page.size:g} Tf {page.size * 1.6:g} TL {start}"]
            ops += [f"({_escape(line)}) Tj T*" for line in page.lines]
            ops.append("ET")
            content = "\n".join(ops).encode()
        stream = add(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
        rotate = f" /Rotate {page.rotate}" if page.rotate else ""
        kids.append(
            add(
                f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 {page.width:g} {page.height:g}]{rotate} "
                f"/Resources << {' '.join(resources)} >> /Contents {stream} 0 R >>".encode()
            )
        )
    count = len(kids) if declared_count is None else declared_count
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {tree} 0 R >>".encode()
    kid_refs = " ".join(f"{k} 0 R" for k in kids)
    objects[tree - 1] = f"<< /Type /Pages /Kids [{kid_refs}] /Count {count} >>".encode()
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.writelines(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def scan_image(lines: list[str], *, font: str = "DejaVuSerif.ttf", size: int = 40) -> Image.Image:
    """A scanned page: text drawn into pixels with a DejaVu font (no text layer in the PDF)."""
    face = ImageFont.truetype(font, size)
    image = Image.new("RGB", (1224, 1584), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((100, 100 + index * (size * 2)), line, font=face, fill="black")
    return image


def page_words(number: int) -> list[str]:
    """The known text of page `number`: distinct words, so a test can tell the pages apart."""
    return [f"Page {number} report", f"Invoice number {1000 + number}"]


def mixed_document(pages: int = 4) -> tuple[bytes, list[list[str]]]:
    """Pages cycling through fonts and sizes, page 3 rotated (/Rotate 90), the last one an image-only scan."""
    built, texts = [], []
    for number in range(1, pages + 1):
        lines = page_words(number)
        texts.append(lines)
        if number == pages and pages > 1:
            built.append(Page(image=scan_image(lines)))
        elif number == 3:
            # Upright only when the reader honours /Rotate (drawn sideways in a landscape media box).
            built.append(Page(lines=lines, font="Times-Roman", size=28, width=792, height=612, rotate=90))
        else:
            built.append(Page(lines=lines, font=FONTS[(number - 1) % len(FONTS)], size=20 + 4 * (number % 3)))
    return build_pdf(built), texts


def text_document(pages: int) -> tuple[bytes, list[list[str]]]:
    """`pages` plain text pages (fast to render and read), each with its own known words."""
    texts = [page_words(n) for n in range(1, pages + 1)]
    return build_pdf([Page(lines=lines, size=28) for lines in texts]), texts


def encrypted(data: bytes, password: str = "secret") -> bytes:
    """The same document encrypted with a user password (unreadable without it)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zero_pages() -> bytes:
    """A well-formed PDF with no pages."""
    return build_pdf([])


def huge_page() -> bytes:
    """One page declaring a media box of 200 x 200 inches (PDF's largest) with a little text."""
    return build_pdf([Page(lines=["Huge page"], width=14400, height=14400, size=400)])
