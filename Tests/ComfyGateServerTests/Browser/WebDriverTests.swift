import ComfyGateTestSupport
import Foundation
import Testing

/// The WebDriver client drives a real headless Chromium: a small page served from the stand-in's web root is
/// navigated, typed into, clicked, read, and its cookies are read and deleted.
@Suite(.timeLimit(.minutes(2)))
struct WebDriverTests {
    static let page = """
        <!doctype html>
        <html><head><title>form</title></head><body>
        <input id="name" name="name" placeholder="who">
        <button id="greet" onclick="document.getElementById('out').textContent = 'hello ' + document.getElementById('name').value">greet</button>
        <p id="out" data-state="ready"></p>
        <ul><li class="item">one</li><li class="item">two</li></ul>
        <script>document.cookie = "visited=yes; path=/"; document.cookie = "theme=dark; path=/";</script>
        </body></html>
        """

    @Test func drivesAPageThroughItsElementsScriptsAndCookies() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("webdriver-page-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try Data(Self.page.utf8).write(to: root.appendingPathComponent("form.html"))
        var options = ComfyUIStandIn.Options()
        options.webRoot = root.path
        try await withComfyUIStandIn(options) { standIn in
            try await withHeadlessChromium { browser in
                try await browser.navigate(to: standIn.baseURL + "/form.html")
                #expect(try await browser.currentURL() == standIn.baseURL + "/form.html")

                let name = try await browser.findElement("#name")
                #expect(try await browser.attribute("placeholder", of: name) == "who")
                #expect(try await browser.attribute("nonexistent", of: name) == nil)
                try await browser.sendKeys("Ada", to: name)
                try await browser.click(try await browser.findElement("#greet"))
                let out = try await browser.findElement("#out")
                try await browser.waitUntil("the greeting is shown", timeout: .seconds(10)) {
                    try await browser.text(of: out) == "hello Ada"
                }
                #expect(try await browser.attribute("data-state", of: out) == "ready")
                var itemTexts: [String] = []
                for item in try await browser.findElements("li.item") { itemTexts.append(try await browser.text(of: item)) }
                #expect(itemTexts == ["one", "two"])
                #expect(try await browser.findElements("table").isEmpty)
                await #expect(throws: WebDriver.Failure.self) { try await browser.findElement("table") }
                let title: String = try await browser.executeScript("return document.title + arguments[0];", arguments: ["!"])
                #expect(title == "form!")

                #expect(Set(try await browser.cookies().map(\.name)) == ["visited", "theme"])
                try await browser.deleteCookie(named: "visited")
                #expect(try await browser.cookies().map(\.name) == ["theme"])
                try await browser.deleteAllCookies()
                #expect(try await browser.cookies().isEmpty)

                let png = try await browser.screenshot()
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
                await #expect(throws: WebDriver.Failure.self) {
                    try await browser.waitUntil("something that never happens", timeout: .milliseconds(300)) { false }
                }
            }
        }
    }
}
