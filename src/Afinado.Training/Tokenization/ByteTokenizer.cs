using System.Text;

namespace Afinado.Training.Tokenization;

/// <summary>Byte-level tokenizer: each UTF-8 byte is a token (vocabulary 256). Byte 0 (NUL, absent from text) ends a document.</summary>
public sealed class ByteTokenizer : ITextTokenizer
{
    public string Name => "byte";
    public int VocabSize => 256;
    public int EndOfText => 0;
    public int[] Encode(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();
    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(ids.Where(i => i != EndOfText).Select(i => (byte)i).ToArray());
}
