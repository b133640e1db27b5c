// SPDX-License-Identifier: Apache-2.0
/// Line-end canonicalisation (RFC 8551 §3.1.1: canonical text has CRLF line ends).
///
/// The generic entry points hand the bytes to non-generic loops over one contiguous buffer
/// (`withByteBuffer`): these run for every byte of every message.
public enum LineEnds {
    /// Returns `bytes` with every bare LF and every bare CR replaced by CRLF; CRLF pairs are kept.
    public static func toCRLF<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        bytes.withByteBuffer(toCRLF(buffer:))
    }

    /// True when every CR is followed by LF and every LF is preceded by CR.
    public static func isCRLF<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.withByteBuffer(isCRLF(buffer:))
    }

    /// Returns `bytes` with every CRLF replaced by a bare LF (the Unix file convention); other
    /// bytes, including lone CRs, are kept.
    public static func toLF<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        bytes.withByteBuffer(toLF(buffer:))
    }

    static func toCRLF(buffer: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        // The common case (mail from an MTA is already CRLF) is one copy. Otherwise the exact
        // size is known from the count, and the bytes are written in place (`append` per byte
        // was most of the cost: callgrind).
        let added = missingLineEndBytes(buffer)
        if added == 0 { return Array(buffer) }
        return [UInt8](unsafeUninitializedCapacity: buffer.count + added) { out, initialised in
            var o = 0
            var previousWasCR = false
            for b in buffer {
                if b == Byte.lf {
                    if !previousWasCR { out[o] = Byte.cr; o += 1 }
                    out[o] = Byte.lf; o += 1
                    previousWasCR = false
                } else {
                    if previousWasCR { out[o] = Byte.lf; o += 1 }   // bare CR: complete it
                    out[o] = b; o += 1
                    previousWasCR = b == Byte.cr
                }
            }
            if previousWasCR { out[o] = Byte.lf; o += 1 }
            initialised = o
        }
    }

    /// How many bytes `toCRLF` adds: one per bare LF and one per bare CR.
    static func missingLineEndBytes(_ buffer: UnsafeBufferPointer<UInt8>) -> Int {
        var added = 0
        var previousWasCR = false
        for b in buffer {
            if b == Byte.lf {
                if !previousWasCR { added += 1 }
                previousWasCR = false
            } else {
                if previousWasCR { added += 1 }
                previousWasCR = b == Byte.cr
            }
        }
        return previousWasCR ? added + 1 : added
    }

    static func isCRLF(buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        missingLineEndBytes(buffer) == 0
    }

    static func toLF(buffer: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(buffer.count)
        var pendingCR = false
        for b in buffer {
            if pendingCR && b != Byte.lf { out.append(Byte.cr) }
            pendingCR = b == Byte.cr
            if !pendingCR { out.append(b) }
        }
        if pendingCR { out.append(Byte.cr) }
        return out
    }
}
