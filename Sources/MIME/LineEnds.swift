/// Line-end canonicalisation (RFC 8551 §3.1.1: canonical text has CRLF line ends).
public enum LineEnds {
    /// Returns `bytes` with every bare LF and every bare CR replaced by CRLF; CRLF pairs are kept.
    public static func toCRLF<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + bytes.count / 32)
        var previousWasCR = false
        for b in bytes {
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

    /// True when every CR is followed by LF and every LF is preceded by CR.
    public static func isCRLF<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var previous: UInt8 = 0
        var pendingCR = false
        for b in bytes {
            if pendingCR && b != Byte.lf { return false }
            if b == Byte.lf && previous != Byte.cr { return false }
            pendingCR = b == Byte.cr
            previous = b
        }
        return !pendingCR
    }

    /// Returns `bytes` with every CRLF replaced by a bare LF (the Unix file convention); other
    /// bytes, including lone CRs, are kept.
    public static func toLF<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var pendingCR = false
        for b in bytes {
            if pendingCR && b != Byte.lf { out.append(Byte.cr) }
            pendingCR = b == Byte.cr
            if !pendingCR { out.append(b) }
        }
        if pendingCR { out.append(Byte.cr) }
        return out
    }
}
