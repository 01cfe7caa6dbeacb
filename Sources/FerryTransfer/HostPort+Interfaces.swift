import NIOCore

extension HostPort {
    /// Addresses a sender could use to reach this listener: the host itself, or for
    /// a wildcard listener the machine's non-loopback IPv4 addresses (then IPv6).
    public func reachableHosts() -> [String] {
        guard host == "0.0.0.0" || host == "::" || host.isEmpty else { return [host] }
        guard let devices = try? System.enumerateDevices() else { return [] }
        var v4: [String] = []
        var v6: [String] = []
        for device in devices {
            guard let address = device.address, let ip = address.ipAddress else { continue }
            if ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("fe80") { continue }
            if case .v4 = address { v4.append(ip) } else { v6.append(ip) }
        }
        return v4 + v6
    }
}
