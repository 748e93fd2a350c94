"""Hand-written, labelled samples for measuring the code detector: (text, language or None).

Snippets of every language the detector covers (short and long, with and without a trailing newline), code in
Markdown fences and behind a shebang, and prose that talks about code (the hard negatives)."""

from __future__ import annotations

CODE: list[tuple[str, str]] = [
    # python
    ("def add(a, b):\n    return a + b", "python"),
    ("import os\nfor name in os.listdir('.'):\n    print(name)", "python"),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)",
     "python"),
    ("squares = [x * x for x in range(10)]\nprint(squares)", "python"),
    ("with open('data.txt') as f:\n    lines = f.readlines()\nprint(len(lines))", "python"),
    # javascript
    ("const app = express();\napp.get('/', (req, res) => res.send('ok'));\napp.listen(3000);", "javascript"),
    ("function sum(arr) {\n  return arr.reduce((a, b) => a + b, 0);\n}", "javascript"),
    ("let count = 0;\ndocument.getElementById('btn').addEventListener('click', () => {\n  count++;\n});",
     "javascript"),
    ("var newDate = new Date();\nconsole.log(newDate.toLocaleString());", "javascript"),
    # typescript
    ("interface User {\n  name: string;\n  age: number;\n}\nconst u: User = { name: 'a', age: 3 };", "typescript"),
    ("function greet(name: string): string {\n  return `Hello ${name}`;\n}", "typescript"),
    # java
    ("public int[] twoSum(int[] nums, int target) {\n    Map<Integer, Integer> seen = new HashMap<>();\n"
     "    for (int i = 0; i < nums.length; i++) {\n        seen.put(nums[i], i);\n    }\n    return new int[0];\n}", "java"),
    ("public class Hello {\n    public static void main(String[] args) {\n        System.out.println(\"Hi\");\n    }\n}",
     "java"),
    ("List<String> names = new ArrayList<>();\nnames.add(\"x\");\nSystem.out.println(names.size());", "java"),
    # c / c++
    ("#include <stdio.h>\n\nint main(void) {\n    printf(\"hello\\n\");\n    return 0;\n}", "c"),
    ("int factorial(int n) {\n    if (n <= 1) return 1;\n    return n * factorial(n - 1);\n}", "c"),
    ("#include <iostream>\nusing namespace std;\nint main() {\n    cout << \"hi\" << endl;\n}", "cpp"),
    ("std::vector<int> v{1, 2, 3};\nfor (auto x : v) {\n    std::cout << x;\n}", "cpp"),
    # c#
    ("using System;\n\nclass Program {\n    static void Main(string[] args) {\n        Console.WriteLine(\"Hi\");\n    }\n}",
     "csharp"),
    ("public class Person {\n    public string Name { get; set; }\n}", "csharp"),
    # go
    ("package main\n\nimport \"fmt\"\n\nfunc main() {\n    fmt.Println(\"hi\")\n}", "go"),
    ("func div(a, b int) (int, error) {\n    if b == 0 {\n        return 0, errors.New(\"zero\")\n    }\n    return a / b, nil\n}",
     "go"),
    ("x := 5\nif err != nil {\n    return err\n}", "go"),
    # rust
    ("fn main() {\n    let mut v = Vec::new();\n    v.push(1);\n    println!(\"{:?}\", v);\n}", "rust"),
    ("pub fn area(w: u32, h: u32) -> u32 {\n    w * h\n}", "rust"),
    ("use std::collections::HashMap;\nlet mut m = HashMap::new();", "rust"),
    # shell
    ("#!/bin/bash\nfor f in *.txt; do\n  wc -l \"$f\"\ndone", "shell"),
    ("#!/usr/bin/env bash\nset -e\necho \"start\"", "shell"),
    ("mkdir -p build\ncd build\ncmake ..\nmake -j4", "shell"),
    ("ls -la | grep txt | wc -l", "shell"),
    ("if [ -f \"$1\" ]; then\n  cat \"$1\"\nfi", "shell"),
    ("git checkout -b feature\ngit commit -am \"wip\"\ngit push origin feature", "shell"),
    # sql
    ("SELECT name, COUNT(*) FROM orders GROUP BY name ORDER BY 2 DESC;", "sql"),
    ("select * from users where id = 3", "sql"),
    ("CREATE TABLE users (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL\n);", "sql"),
    ("UPDATE accounts SET balance = balance - 10 WHERE id = 7;", "sql"),
    ("INSERT INTO t (a, b) VALUES (1, 2);", "sql"),
    # html / css
    ("<!DOCTYPE html>\n<html>\n<body>\n<h1>Title</h1>\n</body>\n</html>", "html"),
    ("<div class=\"card\">\n  <p>Hello</p>\n  <a href=\"/x\">link</a>\n</div>", "html"),
    (".card {\n  padding: 8px;\n  color: #333;\n}", "css"),
    ("body {\n  margin: 0;\n  font-size: 16px;\n}\n@media (max-width: 600px) {\n  body { font-size: 14px; }\n}", "css"),
    # php
    ("<?php\n$name = 'x';\necho \"Hello $name\";\n?>", "php"),
    ("function greet($name) {\n    return \"Hi \" . $name;\n}\n$x = greet('a');", "php"),
    # ruby
    ("def greet(name)\n  puts \"Hello #{name}\"\nend", "ruby"),
    ("[1, 2, 3].each do |x|\n  puts x * 2\nend", "ruby"),
    ("class Dog\n  attr_accessor :name\n  def initialize(name)\n    @name = name\n  end\nend", "ruby"),
    # markdown fences
    ("Here is the function:\n\n```python\ndef f(x):\n    return x * 2\n```\n\nIt doubles its input.", "python"),
    ("```js\nconsole.log(1)\n```", "javascript"),
    ("Run this:\n```\nSELECT id FROM t;\n```", "sql"),
    ("```bash\nnpm install\nnpm test\n```", "shell"),
]

PROSE: list[str] = [
    "Write a function to find the minimum cost path to reach (m, n) from (0, 0) for the given cost matrix.",
    "Write a python function to check whether the given number is even or not using bitwise operator.",
    "The function returns the sum of its two arguments; call it with two integers.",
    "Use a for loop to go over the list, and print each item.",
    "Error handling in Java uses try/catch blocks: the catch block runs when an exception is thrown.",
    "SQL stands for Structured Query Language; you select rows from a table with a query.",
    "I want to select a card from my account and move money from it.",
    "Please select the items you want from the menu, then press OK.",
    "My card payment failed (again) - why?",
    "How do I reset my PIN?",
    "Yes, you can have 1 oatmeal banana protein shake and 4 strips of bacon.",
    "1. Preheat the oven to 200 C.\n2. Mix the flour and butter.\n3. Bake for 20 minutes.",
    "Food: $60 per day, totalling $1800\nRental: $2100 for one-bedroom apartment",
    "The equation x = 2y + 3 has infinitely many solutions.",
    "Q: What is 2 + 2?\nA: 4",
    "Dear team,\n\nThe meeting is moved to Friday (3 pm).\n\nBest,\nAnna",
    "Pros: fast, cheap.\nCons: noisy; hard to repair.",
    "The HTML standard defines elements such as paragraphs, links and tables.",
    "In CSS, the margin property sets the space around an element.",
    "Python is a programming language; its functions are defined with the def keyword.",
    "Rust's borrow checker prevents data races at compile time.",
    "Go was designed at Google; goroutines make concurrency cheap.",
    "- Assess team needs for staff.\n- Establish a budget.\n- Hire a coach.",
    "Knock, knock!\nWho's there?\nBanana.\nBanana who?",
    "The result is (a + b) * c, where a = 1, b = 2 and c = 3.",
]
