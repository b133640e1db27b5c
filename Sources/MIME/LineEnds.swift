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
        // The common case (mail from an MTA is already CRLF) is one copy.
        if isCRLF(buffer: buffer) { return Array(buffer) }
        var out = [UInt8]()
        out.reserveCapacity(buffer.count + buffer.count / 32)
        var previousWasCR = false
        for b in buffer {
            if b == Byte.lf {
                if !previousWasCR { out.append(Byte.cr) }
                out.append(Byte.lf)
                previousWasCR = false
            } else {
                if previousWasCR { out.append(Byte.lf) }   // bare CR: complete it
                out.append(b)
                previousWasCR = b == Byte.cr
            }
        }
        if previousWasCR { out.append(Byte.lf) }
        return out
    }

    static func isCRLF(buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        var previous: UInt8 = 0
        var pendingCR = false
        for b in buffer {
            if pendingCR && b != Byte.lf { return false }
            if b == Byte.lf && previous != Byte.cr { return false }
            pendingCR = b == Byte.cr
            previous = b
        }
        return !pendingCR
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
