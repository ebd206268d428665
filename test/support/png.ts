import zlib from "node:zlib";

/**
 * A PNG whose header claims `width` x `height` (8-bit RGB) but holds only `pixelBytes` zero bytes of
 * image data, deflated: a decompression bomb's shape, which must be refused from its header, unread.
 */
export function bombPng(width: number, height: number, pixelBytes = 4096): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(Buffer.alloc(pixelBytes))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
