import Foundation

/// The JSON text stores keep in one column for values they never query inside (a job's outputs and failure),
/// written the same way by every store.
public enum StoredJSON {
    /// `value` as compact JSON text with sorted keys.
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The value `text` holds; throws ``StoreError/unavailable(_:)`` naming `record` when it is malformed.
    public static func decode<Value: Decodable>(_ type: Value.Type, from text: String, of record: String) throws
        -> Value
    {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError.unavailable("\(record) has malformed stored JSON")
        }
    }
}
