// SPDX-License-Identifier: Apache-2.0
import Foundation

/// The run's figures as text and as a CSV row.
enum Report {
    static let csvHeader = "label,mode,socket,concurrency,size_bytes,messages,errors,signed,seconds,msg_per_s,mb_per_s,p50_ms,p99_ms,p999_ms,max_ms,client_cpu_pct,milter_cpu_pct,milter_rss_start_kb,milter_peak_rss_kb,milter_rss_growth_kb,verdicts"

    struct Figures {
        var msgPerSecond: Double
        var mbPerSecond: Double
        var p50: Double
        var p99: Double
        var p999: Double
        var max: Double
        var clientCPU: Double
        var milterCPU: Double?
        var rssStart: Int?
        var peak: Int?
        var growth: Int?
    }

    static func figures(_ r: LoadReport) -> Figures {
        let t = r.total
        let secs = max(r.seconds, 1e-9)
        func ms(_ p: Double) -> Double { t.messages == 0 ? 0 : Double(t.latency.valueAtPercentile(p)) / 1000 }
        var f = Figures(msgPerSecond: Double(t.messages) / secs, mbPerSecond: Double(t.bytes) / secs / 1_000_000,
                        p50: ms(50), p99: ms(99), p999: ms(99.9), max: t.messages == 0 ? 0 : Double(t.latency.max) / 1000,
                        clientCPU: r.clientCPUSeconds / secs * 100)
        if let before = r.milterBefore, let after = r.milterAfter {
            f.milterCPU = (after.cpuSeconds - before.cpuSeconds) / secs * 100
            f.rssStart = before.rssKB
            f.peak = after.peakKB
            f.growth = after.peakKB - before.rssKB
        }
        return f
    }

    static func text(_ r: LoadReport) -> String {
        let f = figures(r)
        let t = r.total
        var s = "milter-load mode=\(r.options.mode) socket=\(r.options.endpoint.kind) concurrency=\(r.options.concurrency)"
            + " size=\(r.messageSize) messages=\(t.messages) errors=\(t.errors) signed=\(t.modified)"
            + " seconds=\(fmt(r.seconds, 2)) msg/s=\(fmt(f.msgPerSecond, 1)) MB/s=\(fmt(f.mbPerSecond, 2))"
            + " p50=\(fmt(f.p50, 3))ms p99=\(fmt(f.p99, 3))ms p99.9=\(fmt(f.p999, 3))ms max=\(fmt(f.max, 3))ms"
            + " client_cpu=\(fmt(f.clientCPU, 0))%"
        if let cpu = f.milterCPU, let start = f.rssStart, let peak = f.peak, let growth = f.growth {
            s += " milter_cpu=\(fmt(cpu, 0))% milter_rss_start=\(start)KB milter_peak_rss=\(peak)KB rss_growth=\(growth)KB"
        }
        s += " verdicts=" + t.verdicts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ";")
        return s
    }

    static func appendCSV(_ r: LoadReport, label: String, to path: String) throws {
        let f = figures(r)
        let t = r.total
        func opt<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        let row = [
            label.replacingOccurrences(of: ",", with: ";"), r.options.mode, r.options.endpoint.kind,
            "\(r.options.concurrency)", "\(r.messageSize)", "\(t.messages)", "\(t.errors)", "\(t.modified)",
            fmt(r.seconds, 3), fmt(f.msgPerSecond, 1), fmt(f.mbPerSecond, 3),
            fmt(f.p50, 3), fmt(f.p99, 3), fmt(f.p999, 3), fmt(f.max, 3), fmt(f.clientCPU, 1),
            f.milterCPU.map { fmt($0, 1) } ?? "", opt(f.rssStart), opt(f.peak), opt(f.growth),
            t.verdicts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ";"),
        ].joined(separator: ",")
        let isNew = !FileManager.default.fileExists(atPath: path)
        let text = (isNew ? csvHeader + "\n" : "") + row + "\n"
        if isNew {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        } else {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
        }
    }

    static func fmt(_ v: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", v)
    }
}
