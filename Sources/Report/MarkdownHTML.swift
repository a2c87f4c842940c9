// Markdown to XHTML for the report's own Markdown (findings.md, bn-statistics.md, files added
// with --include).
//
// It covers what those files use, and no more: headings (# to ######), paragraphs, lists
// with "-" or "1." markers and one level of nesting, pipe tables with a header separator row and
// column alignment, and inline **strong**, *emphasis*, `code`, [links](target) and backslash
// escapes. Anything else (fenced code, block quotes, "_" emphasis, HTML) is shown as the text it
// is, escaped, so an unsupported construct reads as plain text instead of vanishing or breaking
// the page. Every piece of text goes through escapedXML, so the result stays well-formed XML.

enum MarkdownHTML {
  /// The blocks of `markdown` as XHTML. `headingOffset` shifts heading levels (1: "#" becomes
  /// <h2>) for a document shown inside a page that has its own <h1>.
  static func html(_ markdown: String, headingOffset: Int = 0) -> String {
    let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.hasSuffix("\r") ? $0.dropLast() : $0
    }
    var blocks: [String] = []
    var paragraph: [Substring] = []
    func endParagraph() {
      guard !paragraph.isEmpty else { return }
      let text = paragraph.map { $0.trimmingSpaces }.joined(separator: "\n")
      blocks.append("<p>\(inline(text))</p>")
      paragraph = []
    }
    var index = 0
    while index < lines.count {
      let line = lines[index]
      if line.trimmingSpaces.isEmpty {
        endParagraph()
        index += 1
      } else if let heading = Heading(line) {
        endParagraph()
        let level = min(heading.level + headingOffset, 6)
        blocks.append("<h\(level)>\(inline(String(heading.text)))</h\(level)>")
        index += 1
      } else if index + 1 < lines.count, let alignments = tableAlignments(header: line, separator: lines[index + 1]) {
        endParagraph()
        var rows: [Substring] = []
        index += 2
        while index < lines.count, lines[index].trimmingSpaces.hasPrefix("|") {
          rows.append(lines[index])
          index += 1
        }
        blocks.append(table(header: line, rows: rows, alignments: alignments))
      } else if let marker = ListMarker(line), marker.indent < 2 {
        endParagraph()
        let (list, next) = parseList(lines, from: index)
        blocks.append(list.html)
        index = next
      } else {
        paragraph.append(line)
        index += 1
      }
    }
    endParagraph()
    return blocks.joined(separator: "\n") + (blocks.isEmpty ? "" : "\n")
  }

  // MARK: Headings

  struct Heading {
    let level: Int
    let text: Substring

    /// "## Title": one to six "#", then a space or the end of the line.
    init?(_ line: Substring) {
      let hashes = line.prefix { $0 == "#" }.count
      guard (1...6).contains(hashes) else { return nil }
      let rest = line.dropFirst(hashes)
      guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { return nil }
      level = hashes
      text = rest.trimmingSpaces
    }
  }

  // MARK: Lists

  struct ListMarker {
    let indent: Int
    let ordered: Bool
    let number: Int
    let text: Substring

    /// "- item" or "12. item" after `indent` spaces (a tab counts as four).
    init?(_ line: Substring) {
      var indent = 0
      var rest = line
      while let first = rest.first, first == " " || first == "\t" {
        indent += first == "\t" ? 4 : 1
        rest = rest.dropFirst()
      }
      if rest.hasPrefix("- ") || rest == "-" {
        ordered = false
        number = 1
        text = rest.dropFirst(1).trimmingSpaces
      } else {
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        let after = rest.dropFirst(digits.count)
        guard (1...9).contains(digits.count), after.hasPrefix(". ") || after == ".", let value = Int(digits) else {
          return nil
        }
        ordered = true
        number = value
        text = after.dropFirst(1).trimmingSpaces
      }
      self.indent = indent
    }
  }

  struct ListBlock {
    let ordered: Bool
    let start: Int
    var items: [ListItem] = []

    var html: String {
      let tag = ordered ? "ol" : "ul"
      let startAttribute = ordered && start != 1 ? " start=\"\(start)\"" : ""
      let body = items.map { item in
        let children = item.children.map { "\n" + $0.html } ?? ""
        return "<li>\(inline(item.text))\(children)</li>"
      }
      return "<\(tag)\(startAttribute)>\n\(body.joined(separator: "\n"))\n</\(tag)>"
    }
  }

  struct ListItem {
    var text: String
    var children: ListBlock?
  }

  /// The list that starts at `lines[start]` and the index of the first line after it. Items
  /// indented by two or more spaces nest under the item before them (deeper ones join that
  /// level); other indented lines continue the item before them. A blank line, a line that is
  /// not indented and not an item, or an item of the other kind ("-" after "1.") ends the list.
  static func parseList(_ lines: [Substring], from start: Int) -> (ListBlock, Int) {
    let first = ListMarker(lines[start])!
    var list = ListBlock(ordered: first.ordered, start: first.number)
    var index = start
    while index < lines.count, !lines[index].trimmingSpaces.isEmpty {
      let line = lines[index]
      if let marker = ListMarker(line) {
        if marker.indent < 2 {
          guard marker.ordered == list.ordered else { break }
          list.items.append(ListItem(text: String(marker.text)))
        } else {
          let parent = list.items.count - 1
          if list.items[parent].children == nil {
            list.items[parent].children = ListBlock(ordered: marker.ordered, start: marker.number)
          }
          list.items[parent].children!.items.append(ListItem(text: String(marker.text)))
        }
      } else if line.first == " " || line.first == "\t" {
        let parent = list.items.count - 1
        let continued = " " + line.trimmingSpaces
        if list.items[parent].children != nil {
          let child = list.items[parent].children!.items.count - 1
          list.items[parent].children!.items[child].text += continued
        } else {
          list.items[parent].text += continued
        }
      } else {
        break
      }
      index += 1
    }
    return (list, index)
  }

  // MARK: Tables

  enum Alignment {
    case none, left, center, right

    var attribute: String {
      switch self {
      case .none: ""
      case .left: " style=\"text-align: left\""
      case .center: " style=\"text-align: center\""
      case .right: " style=\"text-align: right\""
      }
    }
  }

  /// The cells of a table row: the text between unescaped "|", without the outer pipes.
  static func cells(_ row: Substring) -> [Substring] {
    var text = row.trimmingSpaces
    if text.hasPrefix("|") { text = text.dropFirst() }
    if text.hasSuffix("|") && !text.hasSuffix("\\|") { text = text.dropLast() }
    var cells: [Substring] = []
    var cellStart = text.startIndex
    var position = text.startIndex
    while position < text.endIndex {
      if text[position] == "\\" {
        position = text.index(after: position)
        if position < text.endIndex { position = text.index(after: position) }
        continue
      }
      if text[position] == "|" {
        cells.append(text[cellStart..<position].trimmingSpaces)
        cellStart = text.index(after: position)
      }
      position = text.index(after: position)
    }
    cells.append(text[cellStart...].trimmingSpaces)
    return cells
  }

  /// The column alignments when `header` starts a table: a row of pipes followed by a separator
  /// row ("---", ":--", "--:" or ":-:") with as many cells.
  static func tableAlignments(header: Substring, separator: Substring) -> [Alignment]? {
    guard header.trimmingSpaces.hasPrefix("|"), separator.trimmingSpaces.hasPrefix("|") else { return nil }
    let separators = cells(separator)
    guard separators.count == cells(header).count else { return nil }
    var alignments: [Alignment] = []
    for cell in separators {
      let dashes = cell.drop { $0 == ":" }.reversed().drop { $0 == ":" }
      guard !dashes.isEmpty, dashes.allSatisfy({ $0 == "-" }) else { return nil }
      switch (cell.hasPrefix(":"), cell.hasSuffix(":")) {
      case (true, true): alignments.append(.center)
      case (true, false): alignments.append(.left)
      case (false, true): alignments.append(.right)
      case (false, false): alignments.append(.none)
      }
    }
    return alignments
  }

  /// Tables with more columns than this get class "wide", which the page lays out at its full
  /// width with equal columns, so that their cells wrap instead of the page scrolling sideways.
  static let wideTableColumns = 8

  /// A row with fewer cells than the header is filled with empty ones; extra cells are dropped.
  static func table(header: Substring, rows: [Substring], alignments: [Alignment]) -> String {
    func row(_ line: Substring, tag: String) -> String {
      let values = cells(line)
      let columns = alignments.indices.map { column in
        let text = column < values.count ? inline(String(values[column])) : ""
        return "<\(tag)\(alignments[column].attribute)>\(text)</\(tag)>"
      }
      return "<tr>" + columns.joined() + "</tr>"
    }
    let body = rows.map { row($0, tag: "td") }.joined(separator: "\n")
    let tag = alignments.count > wideTableColumns ? "<table class=\"wide\">" : "<table>"
    return "\(tag)\n<thead>\(row(header, tag: "th"))</thead>\n<tbody>\n\(body)\n</tbody>\n</table>"
  }

  // MARK: Inline text

  /// Characters a backslash makes literal.
  static let escapable: Set<Character> = ["\\", "`", "*", "_", "[", "]", "(", ")", "#", "|", "-", ".", "!", "<", ">"]

  /// Code spans first (nothing inside them is markup), then backslash escapes, links, strong
  /// and emphasis. A "*" opens only before a non-space and closes only after one, so the
  /// "* marks ..." and "0.12 *" of the comparison tables stay literal.
  static func inline(_ text: String) -> String {
    let characters = Array(text)
    var html = ""
    var position = 0
    while position < characters.count {
      let character = characters[position]
      if character == "\\", position + 1 < characters.count, escapable.contains(characters[position + 1]) {
        html += escapedXML(String(characters[position + 1]))
        position += 2
      } else if character == "`", let close = closingIndex(of: "`", in: characters, from: position + 1) {
        let code = String(characters[(position + 1)..<close])[...].trimmingSpaces
        html += "<code>\(escapedXML(String(code)))</code>"
        position = close + 1
      } else if character == "[", let link = link(in: characters, at: position) {
        html += link.html
        position = link.end
      } else if let emphasis = emphasis(in: characters, at: position) {
        html += emphasis.html
        position = emphasis.end
      } else {
        html += escapedXML(String(character))
        position += 1
      }
    }
    return html
  }

  /// The index of the next unescaped `character` from `start` on.
  static func closingIndex(of character: Character, in characters: [Character], from start: Int) -> Int? {
    var position = start
    while position < characters.count {
      if characters[position] == "\\" && character != "`" {
        position += 2
        continue
      }
      if characters[position] == character { return position }
      position += 1
    }
    return nil
  }

  /// "[text](target)": the text rendered inline, the target escaped into href. Targets with a
  /// scheme other than http, https or mailto (javascript:, data:) stay plain text, so that an
  /// included file cannot put a script into the page.
  static func link(in characters: [Character], at start: Int) -> (html: String, end: Int)? {
    guard let closeText = closingIndex(of: "]", in: characters, from: start + 1),
      closeText + 1 < characters.count, characters[closeText + 1] == "(",
      let closeTarget = closingIndex(of: ")", in: characters, from: closeText + 2)
    else { return nil }
    let text = String(characters[(start + 1)..<closeText])
    let target = String(characters[(closeText + 2)..<closeTarget])[...].trimmingSpaces
    if let colon = target.firstIndex(of: ":"), !target[..<colon].contains("/") {
      let scheme = target[..<colon].lowercased()
      guard ["http", "https", "mailto"].contains(scheme) else { return nil }
    }
    return ("<a href=\"\(escapedXML(String(target)))\">\(inline(text))</a>", closeTarget + 1)
  }

  /// "**strong**" or "*emphasis*" starting at `start`, when the delimiter is followed by a
  /// non-space and a matching delimiter preceded by a non-space closes it. Code spans and, for
  /// emphasis, "**" pairs inside are skipped over, so they cannot close it.
  static func emphasis(in characters: [Character], at start: Int) -> (html: String, end: Int)? {
    for (width, tag) in [(2, "strong"), (1, "em")] {
      let delimiter = String(repeating: "*", count: width)
      guard starts(characters, with: delimiter, at: start), start + width < characters.count,
        !characters[start + width].isWhitespace, characters[start + width] != "*"
      else { continue }
      var position = start + width + 1
      while position + width <= characters.count {
        if characters[position] == "\\" {
          position += 2
        } else if characters[position] == "`", let close = closingIndex(of: "`", in: characters, from: position + 1) {
          position = close + 1
        } else if width == 1 && starts(characters, with: "**", at: position) {
          position += 2
        } else if starts(characters, with: delimiter, at: position), !characters[position - 1].isWhitespace {
          let inner = String(characters[(start + width)..<position])
          return ("<\(tag)>\(inline(inner))</\(tag)>", position + width)
        } else {
          position += 1
        }
      }
    }
    return nil
  }

  static func starts(_ characters: [Character], with delimiter: String, at position: Int) -> Bool {
    let needle = Array(delimiter)
    guard position + needle.count <= characters.count else { return false }
    return Array(characters[position..<(position + needle.count)]) == needle
  }
}

extension Substring {
  /// Without the spaces and tabs at either end.
  fileprivate var trimmingSpaces: Substring {
    let isSpace = { (character: Character) in character == " " || character == "\t" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
      return self[endIndex...]
    }
    return self[first...last]
  }
}
