"""Re-render samples/invoice.png, the page a newcomer can try at once."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent


def main() -> None:
    """Draw a small invoice with a title, lines of text and a table."""
    image = Image.new("RGB", (1000, 760), "white")
    draw = ImageDraw.Draw(image)
    title = ImageFont.truetype("DejaVuSans-Bold.ttf", 44)
    body = ImageFont.truetype("DejaVuSans.ttf", 28)
    draw.text((60, 50), "INVOICE 2026-0142", font=title, fill="black")
    draw.text((60, 130), "Acme Paper Supplies, 12 Harbour Road", font=body, fill="black")
    draw.text((60, 180), "Billed to: Northwind Traders", font=body, fill="black")
    rows = [("Item", "Qty", "Price"), ("Copy paper A4", "10", "45.00"), ("Toner cartridge", "2", "118.50"),
            ("Stapler", "1", "12.90")]  # fmt: skip
    top = 270
    for i, (item, qty, price) in enumerate(rows):
        y = top + i * 60
        draw.rectangle((60, y, 940, y + 60), outline="black", width=2)
        draw.text((80, y + 14), item, font=body, fill="black")
        draw.text((600, y + 14), qty, font=body, fill="black")
        draw.text((760, y + 14), price, font=body, fill="black")
    draw.text((60, 560), "Total due: 176.40 EUR", font=title, fill="black")
    draw.text((60, 650), "Thank you for your business.", font=body, fill="black")
    image.save(HERE / "invoice.png", optimize=True)


if __name__ == "__main__":
    main()
