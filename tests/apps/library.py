"""A small lending-library app for the in-app capture's tests (plain SQLAlchemy 2 ORM).

``list_authors`` has the classic N+1: it reads the authors, then touches ``author.books``
in a loop, which lazy-loads each author's books with one query. The marker comments name
the lines the tests expect the report to point at; the tests find them by their markers,
so the file can change without the tests hard-coding line numbers.
"""

from __future__ import annotations

from sqlalchemy import Engine, ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def create(engine: Engine, authors: int = 8, books_per_author: int = 3) -> None:
    """The schema and its rows (not captured: the tests install the capture after)."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for number in range(1, authors + 1):
            author = Author(name=f"Author {number}")
            author.books = [
                Book(title=f"Book {number}.{n}") for n in range(1, books_per_author + 1)
            ]
            session.add(author)
        session.commit()


def list_authors(engine: Engine) -> list[tuple[str, int]]:
    """Each author's name and number of books: one query for the authors, then one per
    author for the books."""
    with Session(engine) as session:
        authors = session.scalars(select(Author).order_by(Author.id)).all()  # marker: parent
        counts = []
        for author in authors:
            counts.append((author.name, len(author.books)))  # marker: loop
        return counts
