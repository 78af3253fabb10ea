using Afinado.Planner;
using Afinado.Training.Chat;

namespace Afinado.Training.Tests;

/// <summary>
/// The Jinja interpreter's corner cases. Every expected text below is what Jinja2 3.1.6 renders for the same template
/// and variables in the environment transformers builds for chat templates (ImmutableSandboxedEnvironment with
/// trim_blocks and lstrip_blocks, loopcontrols, its tojson and raise_exception): whitespace control, loop variables,
/// scoping and namespace, slicing, operators, filters, tests, Undefined, literals.
/// </summary>
public class ChatTemplateInterpreterTests
{
    private const string Variables = """
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \"there\"\n\tyou  "},
                      {"role": "assistant", "content": "Hello! ¿Qué tal? 🤖"}, {"role": "user", "content": "Again"}],
         "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "tools": null, "documents": null,
         "d": {"b": 2, "a": [1, 2.5, null, true, "x"], "ü": "ñ"}, "n": 7, "f": 2.5, "s": "  Hello, World  ", "e": "", "l": [3, 1, 2]}
        """;

    internal static string Render(string template)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(Variables);
        var variables = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => Py.FromJson(p.Value));
        var t = JinjaTemplate.Parse(template, "test template");
        t.Now = () => new DateTime(2024, 7, 26, 9, 5, 3);
        return t.Render(variables);
    }

    [Theory]
    [InlineData("a  \n  {% if true %}\n  yes\n  {% endif %}\n  b", "a  \n  yes\n  b")]
    [InlineData("a  \n  {%- if true -%}\n  yes\n  {%- endif -%}\n  b", "ayesb")]
    [InlineData("x {{- 1 -}} y {{ 2 }} z", "x1y 2 z")]
    [InlineData("line1\n    {{ 'v' }}\n    {% if 1 %}t{% endif %}   \nend", "line1\n    v\nt   \nend")]
    [InlineData("  {%+ if true %}keep{% endif +%}\nnext", "  keep\nnext")]
    [InlineData("{# comment #}\nA\n  {#- c2 -#}  \nB\n    {# c3 #}\nC", "AB\nC")]
    [InlineData("{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", "  1\n  2\n")]
    [InlineData("{% for i in [1,2] %}{{ i }}{% endfor %}\n\n", "12")]
    [InlineData("trailing\n", "trailing")]
    [InlineData("a{% raw %} {{ x }} {% endraw %}b", "a {{ x }} b")]
    [InlineData("  {% raw %}\n  {{ y }}\n  {% endraw %}\nz", "\n  {{ y }}\nz")]
    [InlineData("{{ 'a' }}  {% if true %}  b  {% endif %}  c", "a    b    c")]
    [InlineData("   text {% if true %}x{% endif %}", "   text x")]
    [InlineData("\t{% if true %}\n\tin\n\t{% endif %}\n\tout", "\tin\n\tout")]
    [InlineData("{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.revindex }}{% if not loop.last %}, {% endif %}{% endfor %}", "1/0/True/False/4/4, 2/1/False/False/4/3, 3/2/False/False/4/2, 4/3/False/True/4/1")]
    [InlineData("{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }}{{ ',' if not loop.last }}{% endfor %}", "1:user,2:assistant,3:user")]
    [InlineData("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=2;a=[1, 2.5, None, True, 'x'];ü=ñ;")]
    [InlineData("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", "b=2;a=[1, 2.5, None, True, 'x'];ü=ñ;")]
    [InlineData("{% for k in d %}{{ k }}{% endfor %}", "baü")]
    [InlineData("{% for c in 'añb🤖' %}[{{ c }}]{% endfor %}", "[a][ñ][b][🤖]")]
    [InlineData("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", "02")]
    [InlineData("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if loop.nextitem is defined else '-' }} {% endfor %}", "->user system>assistant user>user assistant>- ")]
    [InlineData("{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}", "121|122|")]
    [InlineData("{% for i in range(3) %}{{ loop.cycle('a','b') }}{% endfor %}", "aba")]
    [InlineData("{% set x = 1 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", "123|1")]
    [InlineData("{% set ns = namespace(c=0, s='') %}{% for i in range(4) %}{% set ns.c = ns.c + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.c }} {{ ns.s }}", "6 0123")]
    [InlineData("{% set ns = namespace() %}{% set ns.found = false %}{% for m in messages %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}", "True")]
    [InlineData("{% if true %}{% set y = 5 %}{% endif %}{{ y }}", "5")]
    [InlineData("{% set a, b = [1, 2] %}{{ a }}{{ b }}", "12")]
    [InlineData("{% set t %}inner {{ n }}{% endset %}[{{ t }}]", "[inner 7]")]
    [InlineData("{% set messages = messages[1:] %}{{ messages|length }}", "3")]
    [InlineData("{{ l[1:] }} {{ l[::-1] }} {{ l[-1] }} {{ l[:-1] }} {{ l[5] }} {{ l[::2] }} {{ l[-10:2] }}", "[1, 2] [2, 1, 3] 2 [3, 1]  [3, 2] [3, 1]")]
    [InlineData("{{ s[2:7] }}|{{ s[::-1] }}|{{ s[0] }}|{{ 'a🤖b'[1] }}|{{ 'a🤖b'|length }}", "Hello|  dlroW ,olleH  | |🤖|3")]
    [InlineData("{{ messages[-1].content }} {{ messages[0]['role'] }} {{ messages.0.role }}", "Again system system")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2.5 }} {{ 3 * 'ab' }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }}", "3 -4 1 2 3.5 1024 3.5 ababab [1, 2] a1None")]
    [InlineData("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'b' > 'a' }} {{ 'x' in 'xyz' }} {{ 2 in l }} {{ 'a' in d }} {{ 'q' not in d }} {{ not 1 }} {{ true and 'yes' }} {{ 0 or 'fallback' }} {{ none or [] }}", "True True True True True True True False yes fallback []")]
    [InlineData("{{ n|length if n is string else 'num' }} {{ 'yes' if false }}|", "num |")]
    [InlineData("{{ -n }} {{ +f }} {{ -2 ** 2 }} {{ (1, 2) }} {{ 10 / 4 }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 100000000000000000.0 }}", "-7 2.5 4 (1, 2) 2.5 1000.0 0.30000000000000004 1e+20 1.5e-07 1e+17")]
    [InlineData("{{ messages|length - 1 }} {{ (messages|length - 1) - 2 }} {{ 'a' + 'b'|upper + 'c' }}", "3 1 aBc")]
    [InlineData("[{{ s|trim }}] [{{ s|upper }}] [{{ s|lower }}] [{{ 'hello big-world (x)'|title }}] [{{ 'hELLO'|capitalize }}] [{{ s|length }}] [{{ undefined_var|length }}]", "[Hello, World] [  HELLO, WORLD  ] [  hello, world  ] [Hello Big-World (X)] [Hello] [16] [0]")]
    [InlineData("{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ [1,[2,{}],[]]|tojson(indent=4) }}|{{ 'é\"\\n'|tojson }}|{{ d|tojson(sort_keys=true) }}|{{ 'é'|tojson(ensure_ascii=true) }}", "{\"b\": 2, \"a\": [1, 2.5, null, true, \"x\"], \"ü\": \"ñ\"}|{\n  \"b\": 2,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true,\n    \"x\"\n  ],\n  \"ü\": \"ñ\"\n}|[\n    1,\n    [\n        2,\n        {}\n    ],\n    []\n]|\"é\\\"\\n\"|{\"a\": [1, 2.5, null, true, \"x\"], \"b\": 2, \"ü\": \"ñ\"}|\"\\u00e9\"")]
    [InlineData("{{ missing|default('dflt') }} {{ e|default('dflt') }} {{ e|default('dflt', true) }} {{ none|default('x') }} {{ n|d(3) }}", "dflt  dflt None 7")]
    [InlineData("{{ l|join(', ') }} {{ l|join }} {{ messages|map(attribute='role')|join('|') }} {{ messages|join(',', attribute='role') }}", "3, 1, 2 312 system|user|assistant|user system,user,assistant,user")]
    [InlineData("{{ l|list }} {{ 'abc'|list }} {{ d|list }} {{ l|first }} {{ l|last }} {{ 'xyz'|first }} {{ 'xyz'|last }} {{ l|reverse|list }} {{ 'abc'|reverse }}", "[3, 1, 2] ['a', 'b', 'c'] ['b', 'a', 'ü'] 3 2 x z [2, 1, 3] cba")]
    [InlineData("{{ 'aXbXc'|replace('X', '-') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'ab'|replace('', '.') }} {{ 42|string }}{{ none|string }}", "a-b-c bba .a.b. 42None")]
    [InlineData("{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }} {{ [0,1,2,'',none]|select|list }} {{ [1,2,3,4]|reject('odd')|list }}", "2 ['system', 'assistant'] [1, 2] [2, 4]")]
    [InlineData("{{ (messages|selectattr('role', 'equalto', 'system')|list|last).content|trim if (messages|selectattr('role', 'equalto', 'system')|list) else '' }}", "Be brief.")]
    [InlineData("{{ ['a','b']|map('upper')|list }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ 3.9|int }} {{ '2.5'|float }} {{ -3|abs }} {{ l|count }}", "['A', 'B'] 43 0 3 2.5 3 3")]
    [InlineData("{{ 'x,y,,z'.split(',') }} {{ '  a  b \n c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'xxhixx'.strip('x') }} {{ '\n\nhi\n'.lstrip('\n') }} {{ 'hi  '.rstrip() }} {{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x','lo')) }}", "['x', 'y', '', 'z'] ['a', 'b', 'c'] ['a', 'b c'] hi hi\n hi True True")]
    [InlineData("{{ 'a-b'.replace('-', '+') }} {{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ \"they're bill's\".title() }} {{ 'hello world'.title() }} {{ 'hello'.capitalize() }} {{ ', '.join(['a','b']) }} {{ 'banana'.count('an') }} {{ 'banana'.find('n') }}", "a+b ABC abc They'Re Bill'S Hello World Hello a, b 2 2")]
    [InlineData("{{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 'def') }} {{ d.keys()|list }} {{ d.values()|list|length }} {{ d['ü'] }} {{ d.ü }}", "2 None def ['b', 'a', 'ü'] 3 ñ ñ")]
    [InlineData("{{ x is defined }} {{ n is defined }} {{ x is undefined }} {{ none is none }} {{ tools is none }} {{ 's' is string }} {{ d is mapping }} {{ l is iterable }} {{ 's' is iterable }} {{ n is iterable }} {{ l is sequence }} {{ n is number }} {{ f is number }} {{ true is number }}", "False True True True True True True True True False True True True True")]
    [InlineData("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ n is integer }} {{ f is float }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'a' is equalto 'a' }} {{ 'ab' is lower }} {{ messages is not string }} {{ x is iterable }}", "True False True False True True True True True True True True True")]
    [InlineData("{% if messages[0]['role'] == 'system' %}sys{% endif %}{% if (messages[1]['role'] == 'user') != (1 % 2 == 0) %}alt{% endif %}", "sysalt")]
    [InlineData("[{{ nothing }}][{{ nothing|trim }}][{{ d.zz }}][{{ messages[9] }}][{{ none.attr }}][{{ nothing is defined }}][{{ d.zz is defined }}]", "[][][][][][False][False]")]
    [InlineData("{% for x in nothing %}x{% endfor %}ok{{ nothing|list }}{{ nothing|default('d') }}{{ 'x' ~ nothing ~ 'y' }}{{ nothing == nothing }}{{ 'a' in nothing }}", "ok[]dxyTrueFalse")]
    [InlineData("{{ namespace(a=1) }}", "<Namespace {'a': 1}>")]
    [InlineData("{{ 'a\\tb\\n' }}|{{ \"q'\" }}|{{ 'x\\'y' }}|{{ '\\u00e9\\x41\\101' }}|{{ 'uk\\qn' }}|{{ 'con' 'cat' }}|{{ 1_000 }}|{{ 0x1F }}|{{ [1, 'a', none, true, 1.0] }}|{{ {'k': 'v', 'n': [1]} }}|{{ {} }}|{{ [] }}|{{ {'a': {'b': 1}} }}", "a\tb\n|q'|x'y|éAA|uk\\qn|concat|1000|31|[1, 'a', None, True, 1.0]|{'k': 'v', 'n': [1]}|{}|[]|{'a': {'b': 1}}")]
    [InlineData("{{ \"it's\" }}|{{ ['it\\'s', \"q\\\"\"] }}|{{ 1.0 }}|{{ -0.0 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 123456789.123 }}|{{ True }}|{{ None }}", "it's|[\"it's\", 'q\"']|1.0|-0.0|1e+16|1000000000000000.0|0.0001|1e-05|123456789.123|True|None")]
    [InlineData("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %y %I%p %%') }}", "26 Jul 2024 2024-07-26 09:05:03 Friday July 208 24 09AM %")]
    [InlineData("{{ d | tojson(indent=0) }}", "{\n\"b\": 2,\n\"a\": [\n1,\n2.5,\nnull,\ntrue,\n\"x\"\n],\n\"ü\": \"ñ\"\n}")]
    [InlineData("{{ messages[::-1]|map(attribute='role')|list }} {{ (messages|length - 1) - loop_missing|default(0) }}", "['user', 'assistant', 'user', 'system'] 3")]
    [InlineData("{% set x = 1 %}{% if x %}\n    {{- 'stripped' }}\n{% endif %}", "stripped\n")]
    [InlineData("A\n  {%- set x = 1 %}\n  B", "A  B")]
    [InlineData("{{ '%s-%d' }} {{ 'x' * 3 }} {{ 3 * [0] }}", "%s-%d xxx [0, 0, 0]")]
    [InlineData("{{ dict(a=1, b='x') }} {{ range(2, 10, 3)|list }} {{ range(3)|list }}", "{'a': 1, 'b': 'x'} [2, 5, 8] [0, 1, 2]")]
    [InlineData("{% if not (messages[1].content.startswith('<tool') and messages[1].content.endswith('>')) %}plain{% endif %}", "plain")]
    [InlineData("{{ 'a' if true else 'b' if true else 'c' }} {{ 1 if 0 else 2 if 0 else 3 }}", "a 3")]
    [InlineData("{{ l|sort }}", "[1, 2, 3]")]
    public void Renders_as_jinja2_does(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ nothing.attr }}", "'nothing' is undefined")]
    [InlineData("{{ d.zz.deeper }}", "'dict object' has no attribute 'zz'")]
    [InlineData("{{ 'a' + nothing }}", "'nothing' is undefined")]
    [InlineData("{{ nothing[0] }}", "'nothing' is undefined")]
    [InlineData("{{ nothing() }}", "'nothing' is undefined")]
    [InlineData("{{ 1 + 'a' }}", "unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{{ 'a' < 1 }}", "'<' not supported between instances of 'str' and 'int'")]
    [InlineData("{{ 1 // 0 }}", "integer division or modulo by zero")]
    [InlineData("{{ d|tojson }}{{ nothing|tojson }}", "Object of type Undefined is not JSON serializable")]
    [InlineData("{{ 9223372036854775807 + 1 }}", "integer overflow")]
    [InlineData("{{ 'x' * 100000000 }}", "grew past")]
    [InlineData("text\n{% for m in messages %}\n{{ m.content.nope() }}{% endfor %}", "line 3: 'str object' has no attribute 'nope'")]
    public void Runtime_errors_are_input_errors_with_jinja2s_message_and_the_line(string template, string message)
    {
        var e = Assert.Throws<InputError>(() => Render(template));
        Assert.Equal("test template", e.Field);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Raise_exception_is_an_input_error_quoting_the_template()
    {
        var e = Assert.Throws<InputError>(() => Render("{% for m in messages %}\n{% if m.role == 'assistant' %}{{ raise_exception('no assistant ' ~ loop.index) }}{% endif %}{% endfor %}"));
        Assert.Contains("refused the conversation (raise_exception at line 2: \"no assistant 3\")", e.Message);
    }

    [Theory]
    [InlineData("{% if x %}unclosed", 1, "expected 'elif' or 'else' or 'endif'")]
    [InlineData("{{ 1 + }}", 1, "unexpected end of print statement")]
    [InlineData("line1\nline2\n{% endfor %}", 3, "unknown tag 'endfor'")]
    [InlineData("a\n{{ 'unterminated }}", 2, "string literal")]
    [InlineData("{% for x in l %}{% endif %}", 1, "unknown tag 'endif'")]
    [InlineData("{% macro m() %}{% endmacro %}", 1, "'macro' tag is outside the Jinja subset")]
    [InlineData("{% include 'x' %}", 1, "'include' tag is outside the Jinja subset")]
    [InlineData("\n\n{% break %}", 3, "'break' outside of a loop")]
    [InlineData("{{ 'bad \\x4' }}", 1, "escape")]
    [InlineData("{# open comment", 1, "missing end of comment tag")]
    public void Syntax_errors_are_input_errors_with_the_line(string template, int line, string message)
    {
        var e = Assert.Throws<InputError>(() => JinjaTemplate.Parse(template, "test template"));
        Assert.Equal("test template", e.Field);
        Assert.Contains($"line {line}:", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Transformers_generation_tag_renders_its_body()
    {
        // transformers' AssistantTracker extension: {% generation %} only marks assistant text for masks.
        Assert.Equal("gen 7|x", Render("{% generation %}gen {{ n }}{% endgeneration %}|{%- generation -%} x {%- endgeneration %}"));
    }

    [Fact]
    public void Deep_nesting_is_refused_not_a_crash()
    {
        string deep = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";
        Assert.Contains("nested too deeply", Assert.Throws<InputError>(() => JinjaTemplate.Parse(deep, "t")).Message);
        string blocks = string.Concat(Enumerable.Repeat("{% if true %}", 5000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5000));
        Assert.Contains("nested too deeply", Assert.Throws<InputError>(() => JinjaTemplate.Parse(blocks, "t")).Message);
    }

    [Fact]
    public void Python_float_and_json_formatting()
    {
        Assert.Equal("1.0 0.1 1e-05 1e+16 1234567890123456.0 -2.5 nan inf", string.Join(" ",
            new[] { 1.0, 0.1, 0.00001, 1e16, 1234567890123456.0, -2.5, double.NaN, double.PositiveInfinity }.Select(Py.FloatRepr)));
        var value = Py.FromJson(System.Text.Json.JsonDocument.Parse("""{"a": [1, 1.0, "é\u0001"], "b": {}}""").RootElement);
        Assert.Equal("{\"a\": [1, 1.0, \"é\\u0001\"], \"b\": {}}", Py.Json(value, false, null, ", ", ": ", false));
        Assert.Equal("{\n  \"a\": [\n    1,\n    1.0,\n    \"\\u00e9\\u0001\"\n  ],\n  \"b\": {}\n}", Py.Json(value, true, "  ", ",", ": ", false));
    }
}
