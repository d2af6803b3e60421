/// A plain-text table with columns padded to their widest cell.
struct TextTable {
    struct Column {
        var title: String
        var alignRight: Bool
        init(_ title: String, alignRight: Bool = false) {
            self.title = title
            self.alignRight = alignRight
        }
    }

    var columns: [Column]
    private(set) var rows: [[String]] = []

    init(columns: [Column]) {
        self.columns = columns
    }

    /// Adds a row; it must have one cell per column.
    mutating func append(_ row: [String]) {
        precondition(row.count == columns.count, "a row needs \(columns.count) cells")
        rows.append(row)
    }

    /// The header, a rule, and the rows; two spaces between columns, no trailing blanks.
    func render() -> String {
        var widths = columns.map(\.title.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() {
                let fill = String(repeating: " ", count: widths[i] - cell.count)
                let isLast = i == cells.count - 1
                parts.append(columns[i].alignRight ? fill + cell : (isLast ? cell : cell + fill))
            }
            return parts.joined(separator: "  ") + "\n"
        }
        var out = line(columns.map(\.title))
        out += line(widths.map { String(repeating: "-", count: $0) })
        for row in rows { out += line(row) }
        return out
    }
}
