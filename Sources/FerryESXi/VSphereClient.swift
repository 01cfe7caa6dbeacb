import FerryBinary
import Foundation
import NIOCore
import Synchronization

/// The vSphere Web Services API (SOAP over `https://HOST/sdk`), the read-only calls ferry
/// needs to find a VM and its disks: `RetrieveServiceContent`, `SessionManager.Login`,
/// `ViewManager.CreateContainerView`, `PropertyCollector.RetrievePropertiesEx` (and
/// `ContinueRetrievePropertiesEx`), `Logout`. All work on the free ESXi licence.
///
/// The SOAP session has its own `vmware_soap_session` cookie, kept apart from /folder's:
/// a host may hand /folder and /sdk different ones. Requests go through the `ESXiSession`'s
/// HTTP client, so its certificate decision (pin, system CAs, `--insecure`) covers them.
/// Replies are read by `XMLTree` (no DOCTYPE, no declared entities) and bounded in size.
public final class VSphereClient: Sendable {
    public let session: ESXiSession
    private let state = Mutex<State>(State())

    private struct State {
        var cookie: String?
        var content: ServiceContent?
        var loggedIn = false
    }

    /// The references `RetrieveServiceContent` returns that ferry uses, and what the host is.
    public struct ServiceContent: Sendable, Equatable {
        public var rootFolder: String
        public var propertyCollector: String
        public var viewManager: String?
        public var sessionManager: String
        /// `VMware ESXi 5.5.0 build-1331820`.
        public var fullName: String
        public var apiVersion: String
    }

    /// The SOAP version ferry speaks: every host since ESXi 5.0 accepts it, and every
    /// property ferry asks for exists in it.
    static let soapAction = "urn:vim25/5.0"
    /// The largest reply accepted (a host with hundreds of VMs answers in pages of `pageSize`).
    static let maxReply = 32 << 20
    static let pageSize = 100

    public init(session: ESXiSession) {
        self.session = session
    }

    var endpoint: String { session.location.origin + "/sdk" }

    /// One SOAP call: `body` is the element inside `<soapenv:Body>`. Returns the reply's
    /// `…Response` element; a fault is an `ESXiError` (InvalidLogin is `.authentication`,
    /// NotAuthenticated `.authentication` too, others `.protocolViolation` with the host's text).
    func call(_ body: String, method: String) throws -> XMLTree.Element {
        let envelope = """
            <?xml version="1.0" encoding="UTF-8"?>
            <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
            xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
            <soapenv:Body>\(body)</soapenv:Body></soapenv:Envelope>
            """
        var headers = [("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", Self.soapAction)]
        if let cookie = state.withLock({ $0.cookie }) { headers.append(("Cookie", "vmware_soap_session=\(cookie)")) }
        let subject = endpoint + " (\(method))"
        let reply = try session.post(endpoint, body: envelope, headers: headers, maxBody: Self.maxReply, subject: subject)
        for line in reply.headers["Set-Cookie"] {
            if let value = Self.sessionCookie(line) { state.withLock { $0.cookie = value } }
        }
        let bytes = Array(reply.body.readableBytesView)
        let document: XMLTree.Element
        do {
            document = try XMLTree.parse(bytes)
        } catch {
            let start = String(decoding: bytes.prefix(80), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
            throw ESXiError(.protocolViolation, subject, "the reply (HTTP \(reply.status.code)) is not a SOAP document: \(error) (it starts \"\(start)\")")
        }
        guard document.localName == "Envelope", let soapBody = document.child("Body") else {
            throw ESXiError(.protocolViolation, subject, "the reply is XML but not a SOAP envelope (<\(document.name)>)")
        }
        if let fault = soapBody.child("Fault") { throw Self.fault(fault, subject: subject, user: session.location.user) }
        guard reply.status.code == 200 else {
            throw ESXiError(.protocolViolation, subject, "the host answered HTTP \(reply.status.code) without a SOAP fault")
        }
        guard let response = soapBody.children.first, response.localName == method + "Response" else {
            throw ESXiError(.protocolViolation, subject, "the reply has no <\(method)Response>")
        }
        return response
    }

    /// The value of a `vmware_soap_session` Set-Cookie line.
    static func sessionCookie(_ line: String) -> String? {
        guard let pair = line.split(separator: ";").first else { return nil }
        let parts = pair.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "vmware_soap_session" else { return nil }
        return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " \""))
    }

    static func fault(_ fault: XMLTree.Element, subject: String, user: String) -> ESXiError {
        let text = fault.child("faultstring")?.value ?? ""
        let kind = fault.child("detail")?.children.first.map { $0.attribute("type") ?? String($0.localName) } ?? ""
        if kind.contains("InvalidLogin") || text.contains("incorrect user name or password") {
            return ESXiError(.authentication, subject, "the host refused user \"\(user)\" with this password (InvalidLogin)")
        }
        if kind.contains("NotAuthenticated") {
            return ESXiError(.authentication, subject, "the host says the session is not logged in (NotAuthenticated): \(text)")
        }
        let named = kind.isEmpty ? "" : " (\(kind.replacingOccurrences(of: "Fault", with: "")))"
        return ESXiError(.protocolViolation, subject, "the host answered with a SOAP fault\(named): \(text.isEmpty ? "no text" : text)")
    }

    /// `<tag type="Type">value</tag>`, a managed object reference.
    static func ref(_ tag: String, _ type: String, _ value: String) -> String {
        "<\(tag) type=\"\(XMLTree.escaped(type))\">\(XMLTree.escaped(value))</\(tag)>"
    }

    /// `RetrieveServiceContent` (no login needed), cached.
    public func serviceContent() throws -> ServiceContent {
        if let content = state.withLock({ $0.content }) { return content }
        let reply = try call("<RetrieveServiceContent xmlns=\"urn:vim25\">\(Self.ref("_this", "ServiceInstance", "ServiceInstance"))</RetrieveServiceContent>",
                             method: "RetrieveServiceContent")
        guard let value = reply.child("returnval"),
            let root = value.child("rootFolder")?.value, let collector = value.child("propertyCollector")?.value,
            let sessions = value.child("sessionManager")?.value
        else {
            throw ESXiError(.protocolViolation, endpoint, "the ServiceContent lacks rootFolder, propertyCollector or sessionManager")
        }
        let content = ServiceContent(
            rootFolder: root, propertyCollector: collector, viewManager: value.child("viewManager")?.value, sessionManager: sessions,
            fullName: value.path("about", "fullName")?.value ?? "unknown", apiVersion: value.path("about", "apiVersion")?.value ?? "unknown")
        state.withLock { $0.content = content }
        return content
    }

    /// `SessionManager.Login`. The password is sent inside the TLS channel the session's trust
    /// decision checked, and is never logged.
    public func login(password: String) throws {
        let content = try serviceContent()
        _ = try call(
            "<Login xmlns=\"urn:vim25\">\(Self.ref("_this", "SessionManager", content.sessionManager))"
                + "<userName>\(XMLTree.escaped(session.location.user))</userName><password>\(XMLTree.escaped(password))</password></Login>",
            method: "Login")
        state.withLock { $0.loggedIn = true }
    }

    /// `SessionManager.Logout`, best effort (a host keeps idle sessions for 30 minutes).
    public func logout() {
        guard state.withLock({ $0.loggedIn }), let content = try? serviceContent() else { return }
        _ = try? call("<Logout xmlns=\"urn:vim25\">\(Self.ref("_this", "SessionManager", content.sessionManager))</Logout>", method: "Logout")
        state.withLock { $0.loggedIn = false }
    }

    /// The properties of every VM read for `VSphereVM`.
    static let vmProperties = [
        "name", "runtime.powerState", "config.guestFullName", "config.guestId", "config.files.vmPathName", "config.template",
        "config.hardware.numCPU", "config.hardware.memoryMB", "config.firmware", "config.hardware.device", "snapshot",
        "summary.storage.committed", "summary.storage.uncommitted",
    ]

    /// Every VM on the host, with the properties `VSphereVM` reads, in inventory order.
    public func virtualMachines() throws -> [VSphereVM] {
        let content = try serviceContent()
        guard let viewManager = content.viewManager else {
            throw ESXiError(.protocolViolation, endpoint, "the host has no ViewManager (vSphere API 2.5 or older is not supported)")
        }
        let view = try call(
            "<CreateContainerView xmlns=\"urn:vim25\">\(Self.ref("_this", "ViewManager", viewManager))\(Self.ref("container", "Folder", content.rootFolder))"
                + "<type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>",
            method: "CreateContainerView")
        guard let viewRef = view.child("returnval")?.value, !viewRef.isEmpty else {
            throw ESXiError(.protocolViolation, endpoint, "CreateContainerView returned no view")
        }
        defer {
            _ = try? call("<DestroyView xmlns=\"urn:vim25\">\(Self.ref("_this", "ContainerView", viewRef))</DestroyView>", method: "DestroyView")
        }
        let paths = Self.vmProperties.map { "<pathSet>\($0)</pathSet>" }.joined()
        let spec = "<specSet><propSet><type>VirtualMachine</type>\(paths)</propSet>"
            + "<objectSet>\(Self.ref("obj", "ContainerView", viewRef))<skip>true</skip>"
            + "<selectSet xsi:type=\"TraversalSpec\"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>"
            + "</objectSet></specSet>"
        let collector = Self.ref("_this", "PropertyCollector", content.propertyCollector)
        var reply = try call(
            "<RetrievePropertiesEx xmlns=\"urn:vim25\">\(collector)\(spec)<options><maxObjects>\(Self.pageSize)</maxObjects></options></RetrievePropertiesEx>",
            method: "RetrievePropertiesEx")
        var machines: [VSphereVM] = []
        var pages = 0
        while true {
            pages += 1
            guard let result = reply.child("returnval") else { break }  // no VM at all
            for object in result.children("objects") {
                machines.append(try VSphereVM(object, subject: endpoint))
            }
            guard let token = result.child("token")?.value, !token.isEmpty else { break }
            guard pages < 10_000 else { throw ESXiError(.protocolViolation, endpoint, "more than 10000 pages of VMs") }
            reply = try call(
                "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\">\(collector)<token>\(XMLTree.escaped(token))</token></ContinueRetrievePropertiesEx>",
                method: "ContinueRetrievePropertiesEx")
        }
        return machines
    }
}
