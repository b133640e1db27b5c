// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import Milter

/// Logs, at most once a minute, how many packets the AllowedPeers filter dropped since the last
/// line. The kernel drops refused peers before libmilter accepts them, so this count (from the
/// listening socket's drop counter) is all the milter can know of them: not who, only how many.
enum RefusedPeerMonitor {
    static func start(logger: Logger, interval: UInt32 = 60) {
        guard let start = MilterServer.refusedPackets() else { return }
        let thread = Thread {
            var last = start
            while true {
                sleep(interval)
                guard let now = MilterServer.refusedPackets() else { continue }
                if now > last {
                    logger.warning("AllowedPeers: the listening socket dropped \(now - last) packets in the last minute (\(now) since start): connection attempts, with their retransmissions, from peers that may not connect (or a full accept queue, which nstat shows as TcpExtListenDrops); see docs/security.md")
                }
                last = now
            }
        }
        thread.start()
    }
}
