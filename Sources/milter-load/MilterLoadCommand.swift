// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation

/// `milter-load`: drives a milter over the milter protocol (version 6) the way an MTA does and
/// reports msg/s, MB/s, latency percentiles and the milter's CPU and peak RSS.
@main
struct MilterLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "milter-load",
        abstract: "Load generator for milters (milter protocol version 6).",
        discussion: """
        Modes: sign-rsa (From/sender alice@example.com, internal client 127.0.0.1), sign-ecdsa \
        (bob@example.com), verify (the --message file, e.g. a message signed by alice, from the \
        external client 127.0.0.2), pass-through (an unsigned message from 127.0.0.2). \
        Exit status 1 when any message had an error.
        """)

    @Option(help: "Milter socket: inet:PORT@ADDRESS or unix:PATH.")
    var socket: String?

    @Option(help: "sign-rsa | sign-ecdsa | verify | pass-through")
    var mode: String = "sign-ecdsa"

    @Option(help: "Concurrent sessions (milter connections).")
    var concurrency: Int = 8

    @Option(help: "Generated message size in bytes; suffixes K and M (1024-based).")
    var size: String = "2K"

    @Option(help: "Send this message file instead of a generated one.")
    var message: String?

    @Option(help: "Run for this many seconds.")
    var seconds: Double?

    @Option(help: "Stop after this many messages (default without --seconds: 1000).")
    var messages: Int?

    @Option(help: "Messages per milter connection before reconnecting (0: one connection per session).")
    var messagesPerConnection: Int = 0

    @Option(help: "Envelope sender (default: by mode, or the From address of --message).")
    var sender: String?

    @Option(help: "Envelope recipient.")
    var recipient: String = "someone@sink.test"

    @Option(help: "Client address given in SMFIC_CONNECT (default: by mode).")
    var clientAddress: String?

    @Option(help: "Save the first --save-count results (edits applied) as DIR/NNNNN.eml.")
    var save: String?

    @Option(help: "How many results to save.")
    var saveCount: Int = 20

    @Flag(help: "Count a message the milter did not replace the body of as an error.")
    var expectSigned = false

    @Flag(help: "Write like Postfix: Nagle on (no TCP_NODELAY) and one send per packet.")
    var mtaLikeWrites = false

    @Option(help: "PID of the milter, for its CPU time and peak RSS from /proc.")
    var milterPid: Int32?

    @Option(help: "Append a row to this CSV file (header written when the file is new).")
    var csv: String?

    @Option(help: "A label for the CSV row.")
    var label: String = ""

    @Option(help: "Serve as a milter that accepts everything unchanged on this socket (runs until killed).")
    var serveAcceptAll: String?

    @Flag(help: "With --serve-accept-all: answer connect, HELO, MAIL, RCPT and DATA as smime-milter does (for an MTA that writes with Nagle on), not only end-of-message.")
    var answerSmtpSteps = false

    @Option(help: "With --serve-accept-all: answer every end-of-message with this message's MIME header fields (changed, or added where missing) and body (replacing the MTA's), e.g. a saved signed message: what a signing milter's edits cost the MTA, without signing.")
    var replayEdits: String?

    mutating func run() throws {
        if let serve = serveAcceptAll {
            let replay = try replayEdits.map { AcceptAllServer.Replay(message: try MessageTemplate.load(path: $0)) }
            try AcceptAllServer.serve(try Endpoint.parse(serve), answersSMTPSteps: answerSmtpSteps, replay: replay)
        }
        guard let socket else { throw ValidationError("--socket is required") }
        let endpoint = try Endpoint.parse(socket)
        guard concurrency >= 1, concurrency <= 2000 else { throw ValidationError("--concurrency must be 1...2000") }
        let defaults: (sender: String, client: String)
        switch mode {
        case "sign-rsa": defaults = ("alice@example.com", "127.0.0.1")
        case "sign-ecdsa": defaults = ("bob@example.com", "127.0.0.1")
        case "verify": defaults = ("alice@example.com", "127.0.0.2")
        case "pass-through": defaults = ("carol@example.org", "127.0.0.2")
        default: throw ValidationError("unknown mode \(mode)")
        }
        let template: MessageTemplate
        if let message {
            template = try MessageTemplate.load(path: message)
        } else {
            guard let bytes = Self.parseSize(size), bytes > 0, bytes <= 1 << 31 else { throw ValidationError("bad --size \(size)") }
            template = MessageTemplate.generated(size: bytes, sender: sender ?? defaults.sender, recipient: recipient)
        }
        let envelopeSender = sender ?? (message != nil ? template.fromAddress : nil) ?? defaults.sender
        if let save {
            try? FileManager.default.createDirectory(atPath: save, withIntermediateDirectories: true)
        }
        let options = LoadOptions(
            endpoint: endpoint, mode: mode, concurrency: concurrency,
            seconds: seconds, messages: messages ?? (seconds == nil ? 1000 : nil),
            messagesPerConnection: max(0, messagesPerConnection),
            clientAddress: clientAddress ?? defaults.client, saveDirectory: save, saveCount: saveCount,
            expectSigned: expectSigned, milterPID: milterPid, mtaLikeWrites: mtaLikeWrites)
        let prepared = PreparedMessage(template: template, sender: envelopeSender, recipient: recipient)
        let report = LoadRunner.run(options, message: prepared)
        print(Report.text(report))
        for text in report.total.errorTexts { print("error: \(text)") }
        if let csv { try Report.appendCSV(report, label: label, to: csv) }
        if report.total.errors > 0 || report.total.messages == 0 { throw ExitCode(1) }
    }

    static func parseSize(_ text: String) -> Int? {
        let upper = text.uppercased()
        if upper.hasSuffix("K"), let n = Int(upper.dropLast()) { return n * 1024 }
        if upper.hasSuffix("M"), let n = Int(upper.dropLast()) { return n * 1024 * 1024 }
        return Int(upper)
    }
}
